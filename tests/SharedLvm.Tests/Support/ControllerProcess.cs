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
        _channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        Client = new ControllerRpc.ControllerClient(_channel);
    }

    public ControllerRpc.ControllerClient Client { get; }

    public bool HasExited => _process.HasExited;

    public static async Task<ControllerProcess> StartAsync(string stateDirectory, string? faults, params string[] extraArgs)
    {
        var port = FreePort.Next();
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = false };
        foreach (var argument in (string[])[Path.Combine(AppContext.BaseDirectory, "sharedlvm-controller.dll"), "--listen", $"127.0.0.1:{port}", "--metrics-listen", "", "--state-dir", stateDirectory, "--insecure", .. extraArgs])
        {
            info.ArgumentList.Add(argument);
        }

        if (faults is not null)
        {
            info.Environment[SharedLvm.Controller.Faults.FaultInjector.EnvironmentVariable] = faults;
        }

        var controller = new ControllerProcess(Process.Start(info)!, port);
        var health = new Health.HealthClient(controller._channel);
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
