using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Tests.Support;

/// <summary>The real controller host on 127.0.0.1 with a random port, its state in a temp directory.</summary>
internal sealed class InProcessController : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly GrpcChannel _channel;

    private InProcessController(WebApplication app, Uri address, LogSink logs)
    {
        _app = app;
        Logs = logs;
        Address = address;
        _channel = GrpcChannel.ForAddress(address);
        Client = new ControllerRpc.ControllerClient(_channel);
        Registry = new NodeRegistry.NodeRegistryClient(_channel);
    }

    public Uri Address { get; }

    public ControllerRpc.ControllerClient Client { get; }

    public NodeRegistry.NodeRegistryClient Registry { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>Its logs: an unexpected error among them fails the test when the controller stops.</summary>
    public LogSink Logs { get; }

    public static Task<InProcessController> StartAsync(string stateDirectory, params string[] extraArgs) =>
        StartAsync(stateDirectory, new LogSink(), extraArgs);

    public static async Task<InProcessController> StartAsync(string stateDirectory, LogSink logs, params string[] extraArgs)
    {
        var app = ControllerHost.Build(
            ["--listen", "127.0.0.1:0", "--metrics-listen", "", "--state-dir", stateDirectory, .. (extraArgs.Any(a => a.StartsWith("--tls", StringComparison.Ordinal)) ? [] : (string[])["--insecure"]), .. extraArgs],
            builder =>
            {
                builder.Logging.ClearProviders();
                builder.Logging.AddProvider(logs);
                builder.Logging.SetMinimumLevel(LogLevel.Information);
            });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new InProcessController(app, new Uri(address), logs);
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        Logs.VerifyNoErrors();
    }
}
