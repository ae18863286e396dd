using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Benchmarks;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller;
using Grpc.Core;
using Grpc.Net.Client;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;
using SharedLvm.Os.Lvm;
using SharedLvm.Os.Processes;

// Usage: bench-controller [--sizes 0,2000,8000|none] [--ops 20] [--agents 1000] [--out FILE]
if (args.Length > 0 && args[0] == "--simulate-agents")
{
    // The child process of MeasureAgentsAsync: N agents registering and heartbeating, so the
    // controller's CPU is measured without theirs.
    return await AgentSimulator.RunAsync(new Uri(args[1]), int.Parse(args[2], CultureInfo.InvariantCulture), TimeSpan.FromSeconds(double.Parse(args[3], CultureInfo.InvariantCulture)));
}

var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
if (args.Length > 0 && args[0] == "--copy")
{
    // scripts/bench-copy: issue 15's copy rate against dd, on this machine's kernel.
    return await CopyBenchmark.RunAsync(runner, Run, int.Parse(Arg("--rounds", "9"), CultureInfo.InvariantCulture),
        ulong.Parse(Arg("--mib", "256"), CultureInfo.InvariantCulture), Arg("--out", string.Empty));
}

var sizesArg = Arg("--sizes", "0,2000,8000");
var agentCount = int.Parse(Arg("--agents", "1000"), CultureInfo.InvariantCulture);
var sizes = sizesArg == "none" ? [] : sizesArg.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
var ops = int.Parse(Arg("--ops", "20"), CultureInfo.InvariantCulture);
var outFile = Arg("--out", string.Empty);
const ulong MiB = 1024 * 1024;

var work = Directory.CreateTempSubdirectory("slvm-bench-").FullName;
var lu = Path.Combine(work, "lu.img");
await using (var f = File.Create(lu))
{
    f.SetLength(48L * 1024 * 1024 * 1024); // sparse: 8,000 one-extent LVs + the measured ones
}

var device = (await Run("losetup", "--find", "--show", lu)).Trim();
var state = Path.Combine(work, "state");
var report = new StringBuilder();
try
{
    Console.WriteLine($"# SharedLvm controller benchmark, {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC");
    var machine = $"{Environment.ProcessorCount} CPUs, {GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1 << 30)} GiB, kernel {(await Run("uname", "-r")).Trim()}, {(await Run("lvm", "version")).Split('\n')[0].Trim()}, loop device on {(await Run("sh", "-c", "df -h --output=source / | tail -1")).Trim()}";
    Console.WriteLine(machine);
    Console.WriteLine($"{ops} sequential operations per figure; raw = the same lvm command line the controller runs (same --config), on the same VG, in the same run.");
    report.AppendLine(CultureInfo.InvariantCulture, $"# SharedLvm controller benchmark, {DateTimeOffset.UtcNow:yyyy-MM-dd}\n\nMachine: {machine}\n\n{ops} operations per latency figure. Raw = the identical lvm command line (same --config: activation off, PV filter, backup + bounded archive) on the same VG in the same run; the ratio is API/raw.\n");
    report.AppendLine("| LVs | create API p50/p99 | raw lvcreate p50/p99 | ratio p50 | delete API p50 | raw lvremove p50 | ratio | extend API p50 | raw lvextend p50 | ratio | get p99 | list(100) p99 | 1 client ops/s | 8 clients ops/s | 8 clients / serialized raw lvcreate | 100 attach tag writes at once | 100 detach | raw lvchange --addtag p50 x100 | flip ratio (raw/API) |");
    report.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    var reads = new StringBuilder("\n## Reads with lvm backup on (before) and off (after, LvmConfig.ForReads), p50 of 5\n\n| LVs | vgs backup on | vgs off | fullreport on | fullreport off |\n|---|---|---|---|---|\n");
    var agentsReport = new StringBuilder();

    await using (var setup = await Controller.StartAsync(state))
    {
        await setup.Api.CreatePoolAsync(new CreatePoolRequest { Name = "bench", DevicePath = device, Mode = PoolCreateMode.Initialize, WipeOnDelete = WipePolicy.None });
    }

    var config = new LvmConfig { Devices = [device], BackupDirectory = Path.Combine(state, "lvm", "backup"), ArchiveDirectory = Path.Combine(state, "lvm", "archive") };
    var lvm = new LvmMetadataWriter(runner, config, TimeSpan.FromMinutes(5));
    var reader = new LvmReader(runner, config, TimeSpan.FromMinutes(5));
    var emptyBackup = Path.Combine(work, "empty.vg");
    File.Copy(Path.Combine(state, "lvm", "backup", "bench"), emptyBackup);

    foreach (var n in sizes)
    {
        var seqno = (await reader.VgsAsync("bench", CancellationToken.None)).Seqno;
        var seeded = Path.Combine(work, $"seed-{n}.vg");
        VgSeeder.Write(emptyBackup, seeded, "bench", n, seqno + 1);
        var seedTime = Stopwatch.StartNew();
        await Run("lvm", "vgcfgrestore", "--config", config.Render(), "-f", seeded, "bench");
        Console.WriteLine($"\n## {n} LVs (seeded by vgcfgrestore in {seedTime.Elapsed.TotalSeconds:0.0} s)");

        var (vgsOn, vgsOff, fullOn, fullOff) = await MeasureReadsAsync(config);
        Console.WriteLine($"reads   vgs backup on {vgsOn:0} ms, off {vgsOff:0} ms | fullreport on {fullOn:0} ms, off {fullOff:0} ms");
        reads.AppendLine(CultureInfo.InvariantCulture, $"| {n} | {vgsOn:0} ms | {vgsOff:0} ms | {fullOn:0} ms | {fullOff:0} ms |");

        await using var controller = await Controller.StartAsync(state);
        var api = controller.Api;
        var ids = (await api.ListVolumesAsync(new ListVolumesRequest { Pool = "bench", PageSize = 1000 })).Volumes.Select(v => v.Id).ToArray();

        var create = new List<double>();
        var created = new List<Volume>();
        for (var i = 0; i < ops; i++)
        {
            created.Add(await TimeCall(create, () => api.CreateVolumeAsync(new CreateVolumeRequest { Pool = "bench", Name = $"api-{n}-{i}", SizeBytes = 4 * MiB })));
        }

        var rawCreate = new List<double>();
        var rawExtend = new List<double>();
        var rawRemove = new List<double>();
        for (var i = 0; i < ops; i++)
        {
            await Time(rawCreate, () => Done(lvm.LvCreateAsync("bench", $"raw-{i}", 4 * MiB, [LvTagsFor($"raw-{i}")], CancellationToken.None)));
        }

        for (var i = 0; i < ops; i++)
        {
            await Time(rawExtend, () => Done(lvm.LvExtendAsync("bench", $"raw-{i}", 8 * MiB, CancellationToken.None)));
        }

        for (var i = 0; i < ops; i++)
        {
            await Time(rawRemove, () => Done(lvm.LvRemoveAsync("bench", $"raw-{i}", CancellationToken.None)));
        }

        await controller.ReloadAsync("bench"); // raw lvm wrote beside it: the writer's seqno check would see a foreign write
        var extend = new List<double>();
        foreach (var v in created)
        {
            await TimeCall(extend, () => api.ExtendVolumeAsync(new ExtendVolumeRequest { Id = v.Id, SizeBytes = 8 * MiB }));
        }

        var delete = new List<double>();
        foreach (var v in created)
        {
            await TimeCall(delete, () => api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = v.Id }));
        }

        var get = new List<double>();
        var list = new List<double>();
        var random = new Random(7);
        var known = ids.Length > 0 ? ids : [(await api.CreateVolumeAsync(new CreateVolumeRequest { Pool = "bench", Name = "probe", SizeBytes = 4 * MiB })).Id];
        for (var i = 0; i < 2000; i++)
        {
            await TimeCall(get, () => api.GetVolumeAsync(new GetVolumeRequest { Id = known[random.Next(known.Length)] }));
        }

        for (var i = 0; i < 300; i++)
        {
            var token = ids.Length > 100 ? ids[random.Next(ids.Length - 100)] : string.Empty;
            await TimeCall(list, () => api.ListVolumesAsync(new ListVolumesRequest { Pool = "bench", PageSize = 100, PageToken = token }));
        }

        var one = await Throughput(api, clients: 1, perClient: ops, $"t1-{n}");
        var eight = await Throughput(api, clients: 8, perClient: Math.Max(1, ops / 2), $"t8-{n}");
        var rawRate = 1000 / P(rawCreate, 50);
        var (attach, detach, rawFlip) = await MeasureTagFlipsAsync(controller, api, lvm, n);
        var rawFlips = rawFlip * 100;

        Console.WriteLine($"create  API p50 {P(create, 50),8:0.0} ms  p99 {P(create, 99),8:0.0} ms | raw lvcreate p50 {P(rawCreate, 50),8:0.0} ms  p99 {P(rawCreate, 99),8:0.0} ms | ratio {P(create, 50) / P(rawCreate, 50):0.00}x");
        Console.WriteLine($"delete  API p50 {P(delete, 50),8:0.0} ms  p99 {P(delete, 99),8:0.0} ms | raw lvremove p50 {P(rawRemove, 50),8:0.0} ms  p99 {P(rawRemove, 99),8:0.0} ms | ratio {P(delete, 50) / P(rawRemove, 50):0.00}x");
        Console.WriteLine($"extend  API p50 {P(extend, 50),8:0.0} ms  p99 {P(extend, 99),8:0.0} ms | raw lvextend p50 {P(rawExtend, 50),8:0.0} ms  p99 {P(rawExtend, 99),8:0.0} ms | ratio {P(extend, 50) / P(rawExtend, 50):0.00}x");
        Console.WriteLine($"get     p50 {P(get, 50):0.00} ms  p99 {P(get, 99):0.00} ms   list(page 100) p50 {P(list, 50):0.00} ms  p99 {P(list, 99):0.00} ms");
        Console.WriteLine($"creates 1 client {one:0.0} ops/s   8 clients {eight:0.0} ops/s | serialized raw lvcreate {rawRate:0.0} ops/s | 8 clients / raw {eight / rawRate:0.0}x");
        Console.WriteLine($"flips   100 attach tag writes at once {attach:0} ms, 100 detach {detach:0} ms | raw lvchange --addtag p50 {rawFlip:0} ms x 100 = {rawFlips:0} ms | ratio {rawFlips / attach:0.0}x / {rawFlips / detach:0.0}x");
        var (commits, batched) = controller.Batches;
        Console.WriteLine($"batches {batched} writes in {commits} batched commits");
        report.AppendLine(CultureInfo.InvariantCulture,
            $"| {n} | {P(create, 50):0} / {P(create, 99):0} ms | {P(rawCreate, 50):0} / {P(rawCreate, 99):0} ms | {P(create, 50) / P(rawCreate, 50):0.00}x | {P(delete, 50):0} ms | {P(rawRemove, 50):0} ms | {P(delete, 50) / P(rawRemove, 50):0.00}x | {P(extend, 50):0} ms | {P(rawExtend, 50):0} ms | {P(extend, 50) / P(rawExtend, 50):0.00}x | {P(get, 99):0.00} ms | {P(list, 99):0.00} ms | {one:0.0} | {eight:0.0} | {eight / rawRate:0.0}x | {attach:0} ms | {detach:0} ms | {rawFlips:0} ms | {rawFlips / attach:0.0}x / {rawFlips / detach:0.0}x |");
        if (n == sizes[^1] && agentCount > 0)
        {
            agentsReport.Append(await MeasureAgentsAsync(controller, api, ids, n));
        }
    }

    report.Append(reads);
    report.Append(agentsReport);
    await MeasureTlsCost();
}
finally
{
    await Run("losetup", "-d", device);
    Directory.Delete(work, recursive: true);
}

if (outFile.Length > 0)
{
    await File.WriteAllTextAsync(outFile, report.ToString());
    Console.WriteLine($"\nwrote {outFile}");
}

return 0;

// The price of mutual TLS and the call gate: the same small call (ListPools) on a plaintext
// controller and on one with mutual TLS, in the same run; reused connections, and a new connection
// per call (what a short-lived CLI pays: TCP + TLS handshake with client certificate).
async Task MeasureTlsCost()
{
    var pki = Path.Combine(work, "pki");
    foreach (var step in new[] { new[] { "ca" }, ["controller"], ["client", "bench", "admin"] })
    {
        await Run("bash", ["scripts/pki", "--dir", pki, .. step]);
    }

    var tls = SharedLvm.Grpc.Security.TlsFiles.InPkiDirectory(pki, "controller").ToServerArgs();
    var client = new SharedLvm.Grpc.Security.TransportSecurity(SharedLvm.Grpc.Security.ClusterTls.Load(
        SharedLvm.Grpc.Security.TlsFiles.InPkiDirectory(pki, "bench")));
    var figures = new Dictionary<string, (List<double> Reused, List<double> Fresh)>(StringComparer.Ordinal);
    foreach (var (mode, extra) in new[] { ("plaintext", Array.Empty<string>()), ("mutual TLS", tls) })
    {
        await using var controller = await Controller.StartAsync(Path.Combine(work, "state-" + mode.Replace(' ', '-')), extra);
        var dial = (Func<GrpcChannel>)(() => extra.Length == 0
            ? GrpcChannel.ForAddress(controller.Address)
            : client.Dial(controller.Address.ToString(), SharedLvm.Grpc.Security.PeerRoles.Controller));
        var reused = new List<double>();
        var fresh = new List<double>();
        using (var channel = dial())
        {
            var api = new ControllerRpc.ControllerClient(channel);
            await api.ListPoolsAsync(new ListPoolsRequest());
            for (var i = 0; i < ops * 25; i++)
            {
                await TimeCall(reused, () => api.ListPoolsAsync(new ListPoolsRequest()));
            }
        }

        for (var i = 0; i < ops * 2; i++)
        {
            using var channel = dial();
            await TimeCall(fresh, () => new ControllerRpc.ControllerClient(channel).ListPoolsAsync(new ListPoolsRequest()));
        }

        figures[mode] = (reused, fresh);
    }

    var (plainReused, plainFresh) = figures["plaintext"];
    var (tlsReused, tlsFresh) = figures["mutual TLS"];
    Console.WriteLine("\n## mutual TLS (ListPools, empty controller)");
    Console.WriteLine($"reused connection  mTLS p50 {P(tlsReused, 50):0.00} ms  p99 {P(tlsReused, 99):0.00} ms | plaintext p50 {P(plainReused, 50):0.00} ms  p99 {P(plainReused, 99):0.00} ms | ratio {P(tlsReused, 50) / P(plainReused, 50):0.00}x");
    Console.WriteLine($"new connection     mTLS p50 {P(tlsFresh, 50):0.00} ms  p99 {P(tlsFresh, 99):0.00} ms | plaintext p50 {P(plainFresh, 50):0.00} ms  p99 {P(plainFresh, 99):0.00} ms | ratio {P(tlsFresh, 50) / P(plainFresh, 50):0.00}x");
    report.AppendLine(CultureInfo.InvariantCulture, $"\n## Mutual TLS\n\n| ListPools p50 | mTLS | plaintext | ratio |\n|---|---|---|---|");
    report.AppendLine(CultureInfo.InvariantCulture, $"| reused connection | {P(tlsReused, 50):0.00} ms | {P(plainReused, 50):0.00} ms | {P(tlsReused, 50) / P(plainReused, 50):0.00}x |");
    report.AppendLine(CultureInfo.InvariantCulture, $"| new connection per call | {P(tlsFresh, 50):0.00} ms | {P(plainFresh, 50):0.00} ms | {P(tlsFresh, 50) / P(plainFresh, 50):0.00}x |");
    client.Dispose();
}


// vgs and fullreport with the writer's config (backup on: what every read paid before) and with
// backup off (what LvmReader now passes), alternating, p50 of 5 each.
async Task<(double VgsOn, double VgsOff, double FullOn, double FullOff)> MeasureReadsAsync(LvmConfig writerConfig)
{
    var on = writerConfig.Render();
    var off = writerConfig.ForReads().Render();
    var (vgsOn, vgsOff, fullOn, fullOff) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
    for (var i = 0; i < 5; i++)
    {
        await Time(vgsOn, () => Run("lvm", "vgs", "--config", on, "bench"));
        await Time(vgsOff, () => Run("lvm", "vgs", "--config", off, "bench"));
        await Time(fullOn, () => Run("lvm", "fullreport", "--config", on, "--reportformat", "json", "bench"));
        await Time(fullOff, () => Run("lvm", "fullreport", "--config", off, "--reportformat", "json", "bench"));
    }

    return (P(vgsOn, 50), P(vgsOff, 50), P(fullOn, 50), P(fullOff, 50));
}

// 100 volumes get an owner tag at once and then lose it: the metadata writes of attaching and
// detaching 100 volumes (RetagLv through the pool's writer, as AttachmentService writes them; the
// agents' activation is not part of this figure). Raw: lvchange --addtag one LV at a time.
async Task<(double Attach, double Detach, double RawFlip)> MeasureTagFlipsAsync(Controller controller, ControllerRpc.ControllerClient api, LvmMetadataWriter lvm, int n)
{
    var volumes = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => api.CreateVolumeAsync(new CreateVolumeRequest { Pool = "bench", Name = $"flip-{n}-{i}", SizeBytes = 4 * MiB }).ResponseAsync));
    var pool = controller.Pool("bench");
    var records = volumes.Select(v => pool.Catalog.Get(v.Id)!).ToArray();
    var started = Stopwatch.StartNew();
    var attached = await Task.WhenAll(records.Select((r, i) => pool.Writer.WriteAsync(new SharedLvm.Controller.Writes.RetagLv("attach", r, r with { Owners = [$"node-{i % 8}"] }), CancellationToken.None)));
    var attach = started.Elapsed.TotalMilliseconds;
    started.Restart();
    await Task.WhenAll(attached.Select(r => pool.Writer.WriteAsync(new SharedLvm.Controller.Writes.RetagLv("detach", r, r with { Owners = [] }), CancellationToken.None)));
    var detach = started.Elapsed.TotalMilliseconds;

    var raw = new List<double>();
    for (var i = 0; i < Math.Min(ops, 10); i++)
    {
        await Time(raw, () => Done(lvm.LvChangeTagsAsync("bench", records[i].LvName, ["sharedlvm_owner_raw"], [], CancellationToken.None)));
    }

    for (var i = 0; i < Math.Min(ops, 10); i++)
    {
        await lvm.LvChangeTagsAsync("bench", records[i].LvName, [], ["sharedlvm_owner_raw"], CancellationToken.None);
    }

    await controller.ReloadAsync("bench");
    await Task.WhenAll(volumes.Select(v => api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = v.Id }).ResponseAsync));
    return (attach, detach, P(raw, 50));
}

// N agents (a child process) register and heartbeat every 5 s while one client reads through the
// API; the controller's CPU is this process's CPU over the window (the agents' is theirs).
async Task<string> MeasureAgentsAsync(Controller controller, ControllerRpc.ControllerClient api, string[] ids, int n)
{
    const double Seconds = 40;
    var host = Environment.ProcessPath!;
    string[] entry = Path.GetFileNameWithoutExtension(host) == "dotnet" ? [typeof(AgentSimulator).Assembly.Location] : [];
    var child = new ProcessSpec(host, [.. entry, "--simulate-agents", controller.Address.ToString(), agentCount.ToString(CultureInfo.InvariantCulture), Seconds.ToString(CultureInfo.InvariantCulture)])
    { Timeout = TimeSpan.FromSeconds(Seconds + 120) };
    var agents = runner.RunAsync(child);
    await Task.Delay(TimeSpan.FromSeconds(10)); // all registered, heartbeats spread over the interval
    var cpuBefore = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
    var window = Stopwatch.StartNew();
    var get = new List<double>();
    var list = new List<double>();
    var random = new Random(11);
    var known = ids.Length > 0 ? ids : [(await api.CreateVolumeAsync(new CreateVolumeRequest { Pool = "bench", Name = "probe-agents", SizeBytes = 4 * MiB })).Id];
    while (window.Elapsed.TotalSeconds < Seconds - 15)
    {
        await TimeCall(get, () => api.GetVolumeAsync(new GetVolumeRequest { Id = known[random.Next(known.Length)] }));
        await TimeCall(list, () => api.ListVolumesAsync(new ListVolumesRequest { Pool = "bench", PageSize = 100 }));
        await Task.Delay(5);
    }

    var cores = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds / window.Elapsed.TotalSeconds;
    var nodes = (await api.ListNodesAsync(new ListNodesRequest())).Nodes.Count;
    var result = await agents;
    var line = $"{agentCount} agents heartbeating every 5 s ({nodes} nodes registered; agents: {result.StandardOutput.Trim()}): controller CPU {cores:0.00} cores | API get p50 {P(get, 50):0.00} ms p99 {P(get, 99):0.00} ms | list(100) p50 {P(list, 50):0.00} ms p99 {P(list, 99):0.00} ms ({get.Count} each, {n} LVs)";
    Console.WriteLine("agents  " + line);
    return $"\n## {agentCount} simulated agents\n\n{line}\n";
}

static string LvTagsFor(string name) => "slvm_raw=" + name;

static Task<T> TimeCall<T>(List<double> into, Func<AsyncUnaryCall<T>> call) => Time(into, () => call().ResponseAsync);

static async Task<T> Time<T>(List<double> into, Func<Task<T>> action)
{
    var started = Stopwatch.GetTimestamp();
    var result = await action();
    into.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    return result;
}

static async Task<bool> Done(Task task)
{
    await task;
    return true;
}

static double P(List<double> values, int percentile)
{
    var sorted = values.Order().ToArray();
    return sorted[Math.Clamp((int)Math.Ceiling(percentile / 100.0 * sorted.Length) - 1, 0, sorted.Length - 1)];
}

static async Task<double> Throughput(ControllerRpc.ControllerClient api, int clients, int perClient, string prefix)
{
    var started = Stopwatch.StartNew();
    var done = await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
    {
        var mine = new List<string>();
        for (var i = 0; i < perClient; i++)
        {
            mine.Add((await api.CreateVolumeAsync(new CreateVolumeRequest { Pool = "bench", Name = $"{prefix}-{c}-{i}", SizeBytes = 4 * 1024 * 1024 })).Id);
        }

        return mine;
    }));
    var rate = clients * perClient / started.Elapsed.TotalSeconds;
    await Task.WhenAll(done.SelectMany(x => x).Select(id => api.DeleteVolumeAsync(new DeleteVolumeRequest { Id = id }).ResponseAsync));

    return rate;
}

string Arg(string name, string fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : fallback;
}

async Task<string> Run(string program, params string[] arguments)
{
    var result = await runner.RunAsync(new ProcessSpec(program, arguments) { Timeout = TimeSpan.FromMinutes(10), Environment = new Dictionary<string, string> { ["LVM_SUPPRESS_FD_WARNINGS"] = "1" } });
    return result.Succeeded ? result.StandardOutput : throw new InvalidOperationException($"{program} {string.Join(' ', arguments)}: {result.StandardError}");
}

/// <summary>The real controller host in-process, foreign-writer check off (raw lvm runs beside it).</summary>
internal sealed class Controller : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly GrpcChannel _channel;

    private Controller(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
        _channel = GrpcChannel.ForAddress(address);
        Api = new ControllerRpc.ControllerClient(_channel);
    }

    public Uri Address { get; }

    public SharedLvm.Controller.Pools.PoolRuntime Pool(string name) => _app.Services.GetRequiredService<SharedLvm.Controller.Pools.PoolRegistry>().Get(name);

    /// <summary>After raw lvm ran beside the controller: the catalogue (and its seqno) from the VG again.</summary>
    public Task ReloadAsync(string name) => Pool(name).LoadAsync(CancellationToken.None);

    public (long Commits, long Writes) Batches => _app.Services.GetRequiredService<SharedLvm.Controller.Pools.PoolRegistry>().All.Aggregate((0L, 0L), (sum, p) => (sum.Item1 + p.Writer.Batches.Commits, sum.Item2 + p.Writer.Batches.Writes));

    /// <summary>Plaintext (for <see cref="Api"/>) unless <paramref name="tls"/> gives TLS files.</summary>
    public ControllerRpc.ControllerClient Api { get; }

    public static async Task<Controller> StartAsync(string state, string[]? tls = null)
    {
        var app = ControllerHost.Build(
            ["--listen", "127.0.0.1:0", "--metrics-listen", "", "--state-dir", state, .. tls is { Length: > 0 } ? tls : ["--insecure"], "--Controller:ForeignWriteCheckInterval", "01:00:00"],
            b => b.Logging.SetMinimumLevel(LogLevel.Warning));
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new Controller(app, new Uri(address));
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
