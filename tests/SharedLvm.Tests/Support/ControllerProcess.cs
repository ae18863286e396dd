using System.Diagnostics;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Tests.Support;

/// <summary>The real controller binary as a child process: what the crash test kills and restarts.</summary>
internal sealed class ControllerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly GrpcChannel _channel;
    private readonly Task<string> _stderr;

    private ControllerProcess(Process process, int port)
    {
        _process = process;
        _stderr = process.StandardError.ReadToEndAsync();
        Address = $"127.0.0.1:{port}";
        _channel = GrpcChannel.ForAddress($"http://{Address}");
        Client = new ControllerRpc.ControllerClient(_channel);
        Health = new Health.HealthClient(_channel);
    }

    public ControllerRpc.ControllerClient Client { get; }

    public Health.HealthClient Health { get; }

    /// <summary>host:port of its API.</summary>
    public string Address { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static Task<ControllerProcess> StartAsync(string stateDirectory, string? faults, params string[] extraArgs) =>
        StartAsync(stateDirectory, faults is null ? [] : new Dictionary<string, string> { [SharedLvm.Controller.Faults.FaultInjector.EnvironmentVariable] = faults }, extraArgs);

    /// <summary>Starts it with these environment variables (a fault plan, a sanlock daemon's run directory) and waits until it listens.</summary>
    public static Task<ControllerProcess> StartAsync(string stateDirectory, IReadOnlyDictionary<string, string> environment, params string[] extraArgs) =>
        StartAsync(stateDirectory, environment, FreePort.Next(), extraArgs);

    /// <summary>As above, on a given port: agents that follow it reach every restart at the same address.</summary>
    public static async Task<ControllerProcess> StartAsync(string stateDirectory, IReadOnlyDictionary<string, string> environment, int port, params string[] extraArgs)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = false };
        foreach (var argument in (string[])[Path.Combine(AppContext.BaseDirectory, "sharedlvm-controller.dll"), "--listen", $"127.0.0.1:{port}", "--metrics-listen", "", "--state-dir", stateDirectory, "--insecure", .. extraArgs])
        {
            info.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        var controller = new ControllerProcess(Process.Start(info)!, port);
        var health = controller.Health;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2));
                return controller;
            }
            catch (RpcException) when (DateTime.UtcNow < deadline && !controller.HasExited)
            {
                await Task.Delay(50);
            }
            catch (RpcException)
            {
                Assert.Fail($"controller did not start: {await controller.StopAsync()}");
            }
        }
    }

    /// <summary>Until <paramref name="node"/> is READY here: attaches go to a READY node only, and an agent re-registers after every restart.</summary>
    public Task UntilNodeReadyAsync(string node = "node-1", TimeSpan? within = null) => Eventually.TrueAsync(async () =>
    {
        try
        {
            return (await Client.GetNodeAsync(new SharedLvm.Contracts.V1.GetNodeRequest { Name = node })).State == SharedLvm.Contracts.V1.NodeState.Ready;
        }
        catch (RpcException)
        {
            return false;
        }
    }, $"{node} READY on the controller at {Address}", within ?? TimeSpan.FromSeconds(60));

    /// <summary>Waits for a crashed (or kills a live) controller and returns its stderr.</summary>
    public async Task<string> StopAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: false);
        }

        await _process.WaitForExitAsync();
        return await _stderr;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _channel.Dispose();
        _process.Dispose();
    }
}
