using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent;
using AgentRpc = SharedLvm.Contracts.V1.Agent;

namespace SharedLvm.Tests.Support;

/// <summary>The real agent host on 127.0.0.1, reading a fixture sysfs tree, its state in a temp directory.</summary>
internal sealed class InProcessAgent : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly GrpcChannel _channel;
    private readonly string _state;

    private InProcessAgent(WebApplication app, Uri address, string state, LogSink logs)
    {
        _app = app;
        Logs = logs;
        _state = state;
        Address = address;
        _channel = GrpcChannel.ForAddress(address);
        Client = new AgentRpc.AgentClient(_channel);
    }

    public Uri Address { get; }

    public AgentRpc.AgentClient Client { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>Its logs: an unexpected error among them fails the test when the agent stops.</summary>
    public LogSink Logs { get; }

    public static Task<InProcessAgent> StartAsync(string node, string fixture, params string[] extraArgs) =>
        StartAsync(node, fixture, null, extraArgs);

    public static Task<InProcessAgent> StartAsync(string node, string fixture, Action<IServiceCollection>? services, params string[] extraArgs) =>
        StartAsync(node, fixture, services, new LogSink(), extraArgs);

    /// <summary>
    /// node-1 of the two-paths fixture following <paramref name="controllers"/> (one or a list), its
    /// activation faked below IVolumeActivator and its lvm seeing <paramref name="lu"/> as the LU: the
    /// crash tests' agent, which follows the controller binary through every kill and restart.
    /// </summary>
    public static Task<InProcessAgent> StartOnLoopAsync(FakeActivator activator, LoopDevice lu, string controllers) =>
        StartAsync("node-1", "two-paths", s =>
            {
                s.AddSingleton<SharedLvm.Agent.Lvm.IVolumeActivator>(activator);
                s.AddSingleton(new FakeSan().Node());
            }, new LogSink(),
            "--controller", controllers, "--Agent:InspectLvm", "false", "--Agent:ExtraLvmDevicePatterns:0", $"^{lu.Device}$");

    public static async Task<InProcessAgent> StartAsync(string node, string fixture, Action<IServiceCollection>? services, LogSink logs, params string[] extraArgs)
    {
        var state = Directory.CreateTempSubdirectory("slvm-agent-").FullName;
        var root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "sysfs", fixture);
        var app = AgentHost.Build(
            ["--listen", "127.0.0.1:0", "--metrics-listen", "", "--node", node, "--sysfs-root", root, "--state-dir", state, .. (extraArgs.Any(a => a.StartsWith("--tls", StringComparison.Ordinal)) ? [] : (string[])["--insecure"]), .. extraArgs],
            b =>
            {
                b.Logging.ClearProviders();
                b.Logging.AddProvider(logs);
                b.Logging.SetMinimumLevel(LogLevel.Information);
                services?.Invoke(b.Services);
            });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new InProcessAgent(app, new Uri(address), state, logs);
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_state, recursive: true);
        Logs.VerifyNoErrors();
    }
}
