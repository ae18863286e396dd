using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using SharedLvm.Agent;
using SharedLvm.Contracts.V1;
using Grpc.Net.Client;
using SharedLvm.Grpc.Security;
using AgentRpc = SharedLvm.Contracts.V1.Agent;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Lab.Tests;

/// <summary>
/// The lab, up once for the whole suite: two nodes booted by scripts/lab, the controller on this
/// host, a pool on the shared LU. Tests talk to the controller's API and the agents over gRPC, and
/// read the truth from the guests (dmsetup, lvs, multipath) through the QEMU guest agent.
/// </summary>
public sealed partial class Lab : IAsyncLifetime
{
    public const string SkipVariable = "SHAREDLVM_SKIP_LAB";
    public const string Pool = "lab";
    public const string Wwid = "35000c500a0000001";
    public const string HotAddedWwid = "35000c500a0000002";

    /// <summary>LU 3, served by tgt: the one with SCSI-3 persistent reservations (scripts/lab).</summary>
    public const string PrWwid = "3600000000000000000000000ab000003";
    private GrpcChannel? _controller;
    private readonly Dictionary<string, GrpcChannel> _agents = [];
    private readonly Dictionary<string, GrpcChannel> _guestControllers = [];
    private readonly Dictionary<string, TransportSecurity> _security = [];

    public static string Root { get; } = FindRoot();

    public static bool SkipRequested =>
        string.Equals(Environment.GetEnvironmentVariable(SkipVariable), "1", StringComparison.Ordinal);

    /// <summary>True when the suite skipped the lab: the fixture is still built, but boots nothing.</summary>
    public bool Skipped { get; private set; }

    public ControllerRpc.ControllerClient Api { get; private set; } = null!;

    public HashSet<string> NodesDown { get; } = [];

    public async ValueTask InitializeAsync()
    {
        if (SkipRequested)
        {
            Skipped = true;
            return;
        }

        Assert.True(Environment.UserName == "root", $"The SAN lab needs root (loop devices, QEMU). Set {SkipVariable}=1 to skip deliberately.");
        var up = Script(TimeSpan.FromMinutes(20), "up", "2");
        Assert.True(up.Code == 0, "scripts/lab up failed:\n" + up.Output);
        // As an operator would: the lab's admin client certificate; the server must be the controller.
        _controller = Dial("lab-admin").Dial("127.0.0.1:7400", PeerRoles.Controller);
        Api = new ControllerRpc.ControllerClient(_controller);
        File.Delete(Path.Combine(Root, ".cache", "lab", "figures.txt"));
        await Api.CreatePoolAsync(new CreatePoolRequest { Name = Pool, Wwid = Wwid, DevicePath = RunFile("lu1.loop"), Mode = PoolCreateMode.Initialize });
    }

    public ValueTask DisposeAsync()
    {
        _controller?.Dispose();
        foreach (var channel in _agents.Values.Concat(_guestControllers.Values))
        {
            channel.Dispose();
        }

        foreach (var security in _security.Values)
        {
            security.Dispose();
        }

        if (!Skipped && !string.Equals(Environment.GetEnvironmentVariable("SHAREDLVM_LAB_KEEP"), "1", StringComparison.Ordinal))
        {
            Script(TimeSpan.FromMinutes(2), "down");
        }

        return ValueTask.CompletedTask;
    }

    /// <summary>The agent on a node, as the controller reaches it (hostfwd 127.0.0.1:15000 + index).</summary>
    public AgentRpc.AgentClient Agent(string node)
    {
        if (!_agents.TryGetValue(node, out var channel))
        {
            // Agents obey only the controller's certificate, and must answer as the node asked for.
            channel = _agents[node] = Dial("controller").Dial($"127.0.0.1:{15000 + (node[^1] - 'a')}", PeerRoles.Node, node);
        }

        return new AgentRpc.AgentClient(channel);
    }

    /// <summary>
    /// The second agent in a guest (the one that follows the guest controllers, S9z), as a controller
    /// reaches it from this host: hostfwd 127.0.0.1:15300 + index to guest port 7402.
    /// </summary>
    public AgentRpc.AgentClient GuestAgent(string node)
    {
        var key = "guest-agent:" + node;
        if (!_agents.TryGetValue(key, out var channel))
        {
            channel = _agents[key] = Dial("controller").Dial($"127.0.0.1:{15300 + (node[^1] - 'a')}", PeerRoles.Node, node);
        }

        return new AgentRpc.AgentClient(channel);
    }

    /// <summary>
    /// A controller in a guest (S9z), as the lab's admin reaches it: hostfwd 127.0.0.1:ADDRESS's port.
    /// It presents the lab's controller certificate, so the role check is the same as for the host's.
    /// </summary>
    public ControllerRpc.ControllerClient GuestController(string address)
    {
        if (!_guestControllers.TryGetValue(address, out var channel))
        {
            channel = _guestControllers[address] = Dial("lab-admin").Dial(address, PeerRoles.Controller);
        }

        return new ControllerRpc.ControllerClient(channel);
    }

    /// <summary>TLS as <paramref name="identity"/>, from the lab's PKI (scripts/lab makes it with scripts/pki).</summary>
    private TransportSecurity Dial(string identity)
    {
        if (!_security.TryGetValue(identity, out var security))
        {
            security = _security[identity] = new TransportSecurity(ClusterTls.Load(
                TlsFiles.InPkiDirectory(Path.Combine(Root, ".cache", "lab", "pki"), identity)));
        }

        return security;
    }

    /// <summary>A shell script in a guest; fails the test if it exits non-zero unless asked not to.</summary>
    public string Guest(string node, string script, bool check = true, int timeoutSeconds = 120)
    {
        var (code, output) = Script(TimeSpan.FromSeconds(timeoutSeconds + 10), new Dictionary<string, string> { ["LAB_EXEC_TIMEOUT"] = timeoutSeconds.ToString(CultureInfo.InvariantCulture) },
            "exec", node, "sh", "-c", script);
        if (check)
        {
            Assert.True(code == 0, $"{node}: `{script}` exited {code}:\n{output}");
        }

        return output;
    }

    public (int Code, string Output) Fault(params string[] arguments) => Script(TimeSpan.FromMinutes(5), ["fault", .. arguments]);

    /// <summary>A figure for the lab benchmark: printed by scripts/test after the suite, never asserted.</summary>
    public static void Figure(string line) =>
        File.AppendAllText(Path.Combine(Root, ".cache", "lab", "figures.txt"), line + Environment.NewLine);

    public static string RunFile(string name) => File.ReadAllText(Path.Combine(Root, ".cache", "lab", "run", name)).Trim();

    /// <summary>dm devices of LVs in a pool (the lab pool unless named) active on a node (dm names "lab-slvm--...").</summary>
    public IReadOnlySet<string> ActiveLvs(string node, string pool = Pool) =>
        Guest(node, "dmsetup ls --target linear 2>/dev/null | cut -f1 || true")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(n => n.StartsWith(pool + "-", StringComparison.Ordinal))
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Invariant 2, read from the kernels: no LV of the pool is active on two nodes, except the dm
    /// names of volumes explicitly multi-attached (a live migration) in <paramref name="shared"/>.
    /// </summary>
    public void AssertNoLvActiveOnTwoNodes(params string[] shared)
    {
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var node in (string[])["node-a", "node-b"])
        {
            if (NodesDown.Contains(node))
            {
                continue;
            }

            foreach (var lv in ActiveLvs(node))
            {
                Assert.False(seen.TryGetValue(lv, out var other) && !shared.Contains(lv), $"{lv} is active on {other} and {node}");
                seen[lv] = node;
            }
        }
    }

    // The lab's pools are named after their VGs.
    public static string DmName(Volume volume) => SharedLvm.Contracts.Conventions.DmName.Of(volume.Pool, volume.LvName);

    public static string DevicePath(Volume volume) => $"/dev/{volume.Pool}/{volume.LvName}";

    /// <summary>The controller's epoch, from its /metrics (a test forging an agent command must not move the agent's epoch).</summary>
    public static ulong ControllerEpoch()
    {
        using var http = new HttpClient();
        var text = http.GetStringAsync(new Uri("http://127.0.0.1:7410/metrics")).GetAwaiter().GetResult();
        var line = EpochLine().Match(text);
        Assert.True(line.Success, "the controller's /metrics has no sharedlvm_controller_epoch line");
        return ulong.Parse(line.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    // The OpenTelemetry exporter may add labels and a timestamp after the value.
    [GeneratedRegex(@"^sharedlvm_controller_epoch(?:\{[^}]*\})? (\d+)", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex EpochLine();

    public static (int Code, string Output) Script(TimeSpan timeout, params string[] arguments) => Script(timeout, new Dictionary<string, string>(), arguments);

    /// <summary>scripts/lab with extra environment (LAB_EXEC_TIMEOUT: how long labctl waits for a guest command).</summary>
    public static (int Code, string Output) Script(TimeSpan timeout, Dictionary<string, string> environment, params string[] arguments)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        info.ArgumentList.Add(Path.Combine(Root, "scripts", "lab"));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            return (124, $"scripts/lab {string.Join(' ', arguments)}: no exit after {timeout}");
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SharedLvm.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("SharedLvm.sln not found above " + AppContext.BaseDirectory);
    }
}
