using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SharedLvm.Agent;
using SharedLvm.Os.Systemd;
using SharedLvm.Tests.Grpc;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Agent;

/// <summary>Both daemons answer standard gRPC health probes; the agent speaks sd_notify.</summary>
public sealed class AgentDaemonTests : IAsyncLifetime
{
    private readonly string _socketDirectory = Directory.CreateTempSubdirectory("slvm-notify-").FullName;
    private Socket _notifySocket = null!;
    private WebApplication _agent = null!;

    public async Task InitializeAsync()
    {
        _notifySocket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _notifySocket.Bind(new UnixDomainSocketEndPoint(NotifyPath));
        _agent = AgentHost.Build(["--listen", "127.0.0.1:0", "--metrics-listen", "", "--node", "node-a", "--state-dir", _socketDirectory, "--controller", "http://127.0.0.1:1", "--insecure"], builder =>
        {
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddSingleton<ISystemdNotifier>(new SystemdNotifier(NotifyPath));
        });
        await _agent.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _agent.StopAsync();
        await _agent.DisposeAsync();
        _notifySocket.Dispose();
        Directory.Delete(_socketDirectory, recursive: true);
    }

    private string NotifyPath => Path.Combine(_socketDirectory, "notify");

    private int AgentPort => new Uri(_agent.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;

    [Fact]
    public async Task Agent_tells_systemd_it_is_ready_with_a_status()
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var received = await _notifySocket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        var message = Encoding.UTF8.GetString(buffer, 0, received);
        Assert.StartsWith("READY=1\n", message, StringComparison.Ordinal);
        Assert.Contains("STATUS=node node-a", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Python_grpcio_health_probe_succeeds_on_the_agent()
    {
        if (InteropTests.SkipIfRequested())
        {
            return;
        }

        Assert.Contains("\"raw\": \"0801\"", await InteropTests.RunPythonClientAsync(AgentPort, "health"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Python_grpcio_health_probe_succeeds_on_the_controller()
    {
        if (InteropTests.SkipIfRequested())
        {
            return;
        }

        var state = Directory.CreateTempSubdirectory("slvm-health-").FullName;
        await using (var controller = await InProcessController.StartAsync(state))
        {
            Assert.Contains("\"raw\": \"0801\"", await InteropTests.RunPythonClientAsync(controller.Address.Port, "health"), StringComparison.Ordinal);
        }

        Directory.Delete(state, recursive: true);
    }

    [Fact]
    public void Abstract_notify_sockets_are_addressed_with_a_leading_nul()
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        var name = "slvm-test-" + Guid.NewGuid().ToString("N");
        socket.Bind(new UnixDomainSocketEndPoint("\0" + name));
        new SystemdNotifier("@" + name).Notify("STATUS=hello");
        var buffer = new byte[64];
        Assert.Equal("STATUS=hello", Encoding.UTF8.GetString(buffer, 0, socket.Receive(buffer)));
    }
}
