using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using SharedLvm.Tests.Grpc;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Agent;

/// <summary>
/// Both daemons answer standard gRPC health probes; the agent speaks sd_notify when systemd starts
/// it. Microsoft.Extensions.Hosting.Systemd activates only when the parent process is systemd (a
/// Type=notify unit started any other way would time out), so the agent binary is started here by
/// a parent named "systemd", with $NOTIFY_SOCKET pointing at this test.
/// </summary>
public sealed class AgentHostTests : IAsyncLifetime
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slvm-notify-").FullName;
    private Socket _notifySocket = null!;

    public ValueTask InitializeAsync()
    {
        _notifySocket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _notifySocket.Bind(new UnixDomainSocketEndPoint(NotifyPath));
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _notifySocket.Dispose();
        Directory.Delete(_directory, recursive: true);
        return ValueTask.CompletedTask;
    }

    private string NotifyPath => Path.Combine(_directory, "notify");

    /// <summary>
    /// The binary as systemd starts it, with two controller addresses (an active one and a standby):
    /// found in the SAN lab, a list made the agent die at start (the start-up check parsed the whole
    /// list as one URL).
    /// </summary>
    [Fact]
    public async Task Agent_started_by_systemd_says_ready_then_its_status_and_stopping()
    {
        // A shell named "systemd" is the agent's parent: what SystemdHelpers.IsSystemdService checks.
        var systemd = Path.Combine(_directory, "systemd");
        File.Copy("/bin/sh", systemd);
        var agent = Path.Combine(AppContext.BaseDirectory, "sharedlvm-agent.dll");
        var info = new ProcessStartInfo(systemd) { RedirectStandardError = true, RedirectStandardOutput = true };
        info.ArgumentList.Add("-c");
        // "; exit" keeps the shell alive as the parent (a lone command would be exec'd in its place).
        info.ArgumentList.Add($"dotnet {agent} --listen 127.0.0.1:0 --metrics-listen '' --node node-a --state-dir {_directory}/state --controller http://127.0.0.1:1,http://127.0.0.1:2 --insecure; exit $?");
        info.Environment["NOTIFY_SOCKET"] = NotifyPath;
        using var process = Process.Start(info)!;
        try
        {
            var ready = await ReceiveAsync(TimeSpan.FromSeconds(60));
            Assert.Contains("READY=1", ready, StringComparison.Ordinal);
            var status = await ReceiveAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("STATUS=node node-a", status, StringComparison.Ordinal);
        }
        finally
        {
            // SIGTERM to the agent (the shell's child): a graceful stop says STOPPING=1.
            foreach (var child in Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(p => p!.All(char.IsAsciiDigit)))
            {
                if (File.Exists($"/proc/{child}/stat") && File.ReadAllText($"/proc/{child}/stat").Split(' ')[3] == process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))
                {
                    Process.Start("kill", ["-TERM", child!]).WaitForExit();
                }
            }

            var stopping = await ReceiveAsync(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("STOPPING=1", stopping, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Python_grpcio_health_probe_succeeds_on_the_agent()
    {
        InteropTests.DemandPython();
        await using var agent = await InProcessAgent.StartAsync("node-a", "two-paths", "--controller", "http://127.0.0.1:1");
        Assert.Contains("\"raw\": \"0801\"", await InteropTests.RunPythonClientAsync(agent.Address.Port, "health"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Python_grpcio_health_probe_succeeds_on_the_controller()
    {
        InteropTests.DemandPython();
        var state = Directory.CreateTempSubdirectory("slvm-health-").FullName;
        await using (var controller = await InProcessController.StartAsync(state))
        {
            Assert.Contains("\"raw\": \"0801\"", await InteropTests.RunPythonClientAsync(controller.Address.Port, "health"), StringComparison.Ordinal);
        }

        Directory.Delete(state, recursive: true);
    }

    private async Task<string> ReceiveAsync(TimeSpan within)
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(within);
        var received = await _notifySocket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        return Encoding.UTF8.GetString(buffer, 0, received);
    }
}
