using Grpc.Core;
using System.Globalization;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;
using SharedLvm.Grpc;
using SharedLvm.Tests.Support;
using GrpcStatusCode = Grpc.Core.StatusCode;

namespace SharedLvm.Tests.Controller;

/// <summary>
/// Invariant 4 under fire: the real controller binary is SIGKILLed at random fault points of every
/// write (before/after the journal write, during lvm, after lvm, before the reply), restarted, and
/// the client retries the same request. At the end: no orphan LV, no phantom volume, no duplicate
/// LV for one request, vgck clean, and the "committed but not acknowledged" case was observed. A third
/// of the steps are bursts of concurrent clients, so the writer batches them and kills land inside
/// batches (batch.* points: journal, during the one vgcfgrestore or lvremove, after it, before replies).
/// Iterations: SHAREDLVM_CRASH_KILLS (default 120 kills: 200 took over 5 of CI's 90 minutes).
/// </summary>
public sealed class ControllerCrashTests : IDisposable
{
    private const ulong MiB = 1024 * 1024;
    private readonly ITestOutputHelper _output;
    private readonly string _state = Directory.CreateTempSubdirectory("slvm-crash-").FullName;
    private readonly LoopDevice? _lu = LoopDevice.Create(4L * 1024 * 1024 * 1024);
    private readonly string _pool = "crash" + Guid.NewGuid().ToString("N")[..6];

    public ControllerCrashTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public void Dispose()
    {
        if (_lu is not null)
        {
            _lu.Lvm("vgremove", "-f", _pool);
            _lu.Dispose();
        }

        Directory.Delete(_state, recursive: true);
    }

    [Fact]
    public async Task Killed_at_every_step_the_controller_converges_with_nothing_lost_or_orphaned()
    {
        LoopDevice.Present(_lu);

        var targetKills = int.Parse(Environment.GetEnvironmentVariable("SHAREDLVM_CRASH_KILLS") ?? "120", CultureInfo.InvariantCulture);
        await using (var setup = await ControllerProcess.StartAsync(_state, faults: null))
        {
            // Metadata writes only: deleted volumes go at once (a wipe needs an agent; DataJobsTests
            // covers wipes, and restarts in the middle of them).
            await setup.Client.CreatePoolAsync(new CreatePoolRequest { Name = _pool, DevicePath = _lu.Device, Mode = PoolCreateMode.Initialize, WipeOnDelete = WipePolicy.None });
        }

        var random = new Random(4242);
        var expected = new Dictionary<string, (string Id, ulong Size)>(StringComparer.Ordinal); // name -> what the client was told
        var kills = 0;
        var killsByPoint = new Dictionary<string, int>(StringComparer.Ordinal);
        var committedNotAcknowledged = 0;
        var operations = 0;
        var seed = 1;
        ControllerProcess? controller = null;
        try
        {
            for (var n = 0; kills < targetKills && n < targetKills * 10; n++)
            {
                // A third of the time several clients at once, on distinct volumes: the writer combines
                // them into one commit, so kills land inside batches too (batch.* fault points).
                var burst = random.Next(100) < 35 ? random.Next(2, 7) : 1;
                var pending = new List<(string Kind, Google.Protobuf.IMessage Request, string Name)>();
                for (var b = 0; b < burst; b++)
                {
                    var next = NextOperation(random, expected, n, pending.Select(p => p.Name).ToHashSet(StringComparer.Ordinal));
                    if (next is { } op)
                    {
                        pending.Add(op);
                    }

                    n += b + 1 < burst ? 1 : 0;
                }

                operations += pending.Count;
                while (pending.Count > 0)
                {
                    controller ??= await ControllerProcess.StartAsync(_state, $"p=0.09;seed={seed++};points=*");
                    pending = await SendAllAsync(controller.Client, pending, expected);
                    if (pending.Count == 0)
                    {
                        break;
                    }

                    var log = await controller.StopAsync();
                    await controller.DisposeAsync();
                    controller = null;
                    var point = log.Split('\n').FirstOrDefault(l => l.StartsWith("FAULT INJECTED at ", StringComparison.Ordinal))?["FAULT INJECTED at ".Length..].Split(':')[0];
                    Assert.True(point is not null, $"controller died without an injected fault:\n{log}");
                    kills++;
                    killsByPoint[point] = killsByPoint.GetValueOrDefault(point) + 1;
                    WaitForOrphanedLvm();
                    foreach (var (kind, _, name) in pending)
                    {
                        if (kind == "create" && !expected.ContainsKey(name) && LvNamesInVg().Contains(name))
                        {
                            committedNotAcknowledged++;
                        }
                    }
                }
            }
        }
        finally
        {
            if (controller is not null)
            {
                await controller.DisposeAsync();
            }
        }

        // Converge without faults and compare the API, the VG and what clients were told.
        _output.WriteLine($"{operations} operations, {kills} kills, {committedNotAcknowledged} committed-but-not-acknowledged creates");
        _output.WriteLine(string.Join(", ", killsByPoint.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key}={k.Value}")));
        Assert.True(kills >= targetKills, $"only {kills} kills");
        Assert.True(committedNotAcknowledged > 0, "the crash test never observed an lvm commit that was not acknowledged");
        Assert.Contains(killsByPoint.Keys, k => k.EndsWith(".during_lvm", StringComparison.Ordinal));
        if (targetKills >= 100)
        {
            Assert.Contains(killsByPoint.Keys, k => k.StartsWith("batch.", StringComparison.Ordinal));
        }

        await AssertConvergedAsync(expected);
    }

    /// <summary>
    /// Every write's fault points, enumerated rather than sampled: each is armed alone (p=1) until it
    /// has killed the controller (<see cref="CrashKills.PerPoint"/> times), the interrupted requests
    /// are retried on a clean restart, and the pool must converge as in the random test.
    /// </summary>
    [Fact]
    public async Task Each_write_fault_point_killed_converges()
    {
        LoopDevice.Present(_lu);
        await using (var setup = await ControllerProcess.StartAsync(_state, faults: null))
        {
            await setup.Client.CreatePoolAsync(new CreatePoolRequest { Name = _pool, DevicePath = _lu.Device, Mode = PoolCreateMode.Initialize, WipeOnDelete = WipePolicy.None });
        }

        string[] steps = ["before_journal", "after_journal", "during_lvm", "after_lvm", "before_reply"];
        // Clones last: a clone that no agent copies stays COPYING, and its source can't be deleted.
        var points = ((string[])["create", "delete", "extend", "labels", "batch", "clone"]).SelectMany(kind => steps.Select(step => $"{kind}.{step}")).ToArray();
        var expected = new Dictionary<string, (string Id, ulong Size)>(StringComparer.Ordinal);
        var n = 0;
        foreach (var point in points)
        {
            var kills = 0;
            for (var attempt = 0; kills < CrashKills.PerPoint; attempt++)
            {
                Assert.True(attempt < CrashKills.PerPoint + 9, $"{point} killed the controller only {kills} times in {attempt} attempts");
                var kind = point.Split('.')[0];
                if (kind is not ("create" or "batch") && expected.Count < 3)
                {
                    // Deletes, extends, relabels and clones need volumes (a batch is several creates at
                    // once). A clean controller only for that: each start is a second of the CI's 90 minutes.
                    await using var clean = await ControllerProcess.StartAsync(_state, faults: null);
                    while (expected.Count < 3)
                    {
                        var (_, request, name) = NewCreate(n++);
                        Record(expected, "create", name, request, await Send(clean.Client, "create", request));
                    }
                }

                var ops = kind switch
                {
                    "batch" => Enumerable.Range(0, 4).Select(_ => NewCreate(n++)).ToList(),
                    "create" => [NewCreate(n++)],
                    _ => [OperationOn(kind, expected.First(e => !e.Key.StartsWith("clone-", StringComparison.Ordinal)), n++)],
                };
                var armed = await ControllerProcess.StartAsync(_state, $"p=1;seed=1;points={point}");
                var failed = await SendAllAsync(armed.Client, ops, expected);
                var log = await armed.StopAsync();
                await armed.DisposeAsync();
                if (failed.Count == 0)
                {
                    continue; // the point was not on this request's path (a burst that was not combined)
                }

                Assert.Contains($"FAULT INJECTED at {point}", log, StringComparison.Ordinal);
                kills++;
                WaitForOrphanedLvm();
                await using var retry = await ControllerProcess.StartAsync(_state, faults: null);
                Assert.Empty(await SendAllAsync(retry.Client, failed, expected));
            }

            _output.WriteLine($"{point}: killed {kills} times");
        }

        await AssertConvergedAsync(expected);
    }

    /// <summary>
    /// Attach and detach, killed at each of their steps: the owner tag's write points and the moment
    /// right after the agent activated or deactivated. A real agent (in this process, its activation
    /// faked below IVolumeActivator) follows the controller binary through every restart. Each point
    /// kills it (<see cref="CrashKills.PerPoint"/> times). First, with no client retrying, the
    /// restarted controller must settle what the killed one left in flight on its own: the LV's owner
    /// tag, the API's attachment and the node's active LVs agree, nothing ATTACHING or DETACHING, and
    /// a detach always finished. Then the retried request must end where an uninterrupted one does.
    /// </summary>
    [Fact]
    public async Task Each_attach_and_detach_fault_point_killed_converges()
    {
        LoopDevice.Present(_lu);
        var port = FreePort.Next();
        Task<ControllerProcess> StartAsync(string? faults) => StartOnPortAsync(port, faults);
        Volume volume;
        await using (var setup = await StartAsync(null))
        {
            await setup.Client.CreatePoolAsync(new CreatePoolRequest { Name = _pool, DevicePath = _lu.Device, Mode = PoolCreateMode.Initialize, WipeOnDelete = WipePolicy.None });
            volume = await setup.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = _pool, Name = "attached", SizeBytes = 4 * MiB });
        }

        var activator = new FakeActivator(_lu, "node-1");
        var agent = await StartAgentAsync(port, activator);
        ControllerProcess? clean = null;
        try
        {
            string[] steps = ["before_journal", "after_journal", "during_lvm", "after_lvm", "before_reply"];
            var points = steps.Select(step => "attach." + step).Append("attach.after_activate")
                .Concat(steps.Select(step => "detach." + step)).Append("detach.after_deactivate");
            foreach (var point in points)
            {
                var attach = point.StartsWith("attach.", StringComparison.Ordinal);
                for (var kill = 0; kill < CrashKills.PerPoint; kill++)
                {
                    // From where the verb starts: detached for an attach, attached for a detach. The
                    // last round's converged controller sets it up (one start fewer per round).
                    clean ??= await StartAsync(null);
                    await clean.UntilNodeReadyAsync();
                    await SendAttachAsync(clean, volume, attach: !attach);
                    await clean.DisposeAsync();
                    clean = null;

                    var armed = await StartAsync($"p=1;seed=1;points={point}");
                    await armed.UntilNodeReadyAsync();
                    var interrupted = await Assert.ThrowsAsync<RpcException>(() => SendAttachAsync(armed, volume, attach));
                    Assert.True(interrupted.StatusCode is GrpcStatusCode.Unavailable or GrpcStatusCode.Internal or GrpcStatusCode.Unknown or GrpcStatusCode.Cancelled, interrupted.ToString());
                    var log = await armed.StopAsync();
                    await armed.DisposeAsync();
                    Assert.Contains($"FAULT INJECTED at {point}", log, StringComparison.Ordinal);
                    WaitForOrphanedLvm();

                    var retry = clean = await StartAsync(null);
                    await retry.UntilNodeReadyAsync();
                    var settled = await SettledAsync(retry, volume, activator);
                    if (!attach)
                    {
                        Assert.False(settled, $"{point}: the detach left in flight was not finished");
                    }

                    _output.WriteLine($"{point}: settled without a client as {(settled ? "attached" : "detached")}");
                    await SendAttachAsync(retry, volume, attach);
                    Assert.Equal(attach, await SettledAsync(retry, volume, activator));
                    Assert.Equal(attach ? VolumeState.Attached : VolumeState.Available,
                        (await retry.Client.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).State);
                }

                _output.WriteLine($"{point}: killed {CrashKills.PerPoint} times");
            }
        }
        finally
        {
            if (clean is not null)
            {
                await clean.DisposeAsync();
            }

            await agent.DisposeAsync();
        }

        var (vgck, output) = _lu.Lvm("vgck", _pool);
        Assert.True(vgck == 0, output);
    }

    /// <summary>
    /// Delete under wipe_on_delete=zero, killed at each step: the mark's five write points (the
    /// request's), then in the data job after an agent zeroed the extents (wipe.before_finish) and at
    /// the LV's removal's five write points. Each kills (<see cref="CrashKills.PerPoint"/> times);
    /// after a restart (and a retried delete when the request was interrupted) the LV must go, and
    /// the extents it had read zeros: never an LV removed unwiped, never a mark lost.
    /// </summary>
    [Fact]
    public async Task Each_wipe_fault_point_killed_converges()
    {
        LoopDevice.Present(_lu);
        var port = FreePort.Next();
        await using (var setup = await StartOnPortAsync(port, null))
        {
            // The fixture tree's node sees this WWID, so the controller sends it the wipe.
            await setup.Client.CreatePoolAsync(new CreatePoolRequest
            {
                Name = _pool, DevicePath = _lu.Device, Mode = PoolCreateMode.Initialize, Wwid = "35000c500a0000001", WipeOnDelete = WipePolicy.Zero,
            });
        }

        var agent = await StartAgentAsync(port, new FakeActivator(_lu, "node-1"));
        ControllerProcess? clean = null;
        try
        {
            string[] steps = ["before_journal", "after_journal", "during_lvm", "after_lvm", "before_reply"];
            var points = steps.Select(step => "mark_deleted." + step).Append("wipe.before_finish").Concat(steps.Select(step => "delete." + step));
            var n = 0;
            foreach (var point in points)
            {
                var interruptsTheRequest = point.StartsWith("mark_deleted.", StringComparison.Ordinal);
                for (var kill = 0; kill < CrashKills.PerPoint; kill++)
                {
                    // The last round's converged controller creates the volume (one start fewer per round).
                    clean ??= await StartOnPortAsync(port, null);
                    var volume = await clean.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = _pool, Name = $"tenant-{n++}", SizeBytes = 4 * MiB });
                    await clean.DisposeAsync();
                    clean = null;

                    var runs = Runs(volume);
                    WriteSecret(runs);
                    var armed = await StartOnPortAsync(port, $"p=1;seed=1;points={point}");
                    await armed.UntilNodeReadyAsync();
                    var delete = new DeleteVolumeRequest { Id = volume.Id };
                    if (interruptsTheRequest)
                    {
                        var interrupted = await Assert.ThrowsAsync<RpcException>(async () => await armed.Client.DeleteVolumeAsync(delete, deadline: DateTime.UtcNow.AddSeconds(60)));
                        Assert.True(interrupted.StatusCode is GrpcStatusCode.Unavailable or GrpcStatusCode.Internal or GrpcStatusCode.Unknown or GrpcStatusCode.Cancelled, interrupted.ToString());
                    }
                    else
                    {
                        // The mark is answered; the kill comes later, in the data job.
                        await armed.Client.DeleteVolumeAsync(delete, deadline: DateTime.UtcNow.AddSeconds(60));
                        await Eventually.TrueAsync(() => armed.HasExited, $"the controller killed at {point}", TimeSpan.FromSeconds(90));
                    }

                    var log = await armed.StopAsync();
                    await armed.DisposeAsync();
                    Assert.Contains($"FAULT INJECTED at {point}", log, StringComparison.Ordinal);
                    WaitForOrphanedLvm();

                    var retry = clean = await StartOnPortAsync(port, null);
                    if (interruptsTheRequest)
                    {
                        await retry.Client.DeleteVolumeAsync(delete, deadline: DateTime.UtcNow.AddSeconds(60));
                    }

                    await Eventually.TrueAsync(() => !LvNamesInVg().Contains(volume.Name), $"{volume.Name} wiped and removed after a kill at {point}", TimeSpan.FromSeconds(90));
                    Assert.True(ReadsZeros(runs), $"{volume.Name}'s extents hold data after its LV was removed (killed at {point})");
                    // The catalog forgets the volume once lvremove has returned and the journal says
                    // so: an instant after lvs stops listing it (the full run of 2026-12-03 18:02 read
                    // it there, DELETING, in that instant).
                    await Eventually.TrueAsync(async () =>
                    {
                        try
                        {
                            await retry.Client.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id });
                            return false;
                        }
                        catch (RpcException e) when (e.StatusCode == GrpcStatusCode.NotFound)
                        {
                            return true;
                        }
                    }, $"{volume.Name} gone from the API after a kill at {point}", TimeSpan.FromSeconds(30));
                }

                _output.WriteLine($"{point}: killed {CrashKills.PerPoint} times");
            }
        }
        finally
        {
            if (clean is not null)
            {
                await clean.DisposeAsync();
            }

            await agent.DisposeAsync();
        }

        var (vgck, output) = _lu.Lvm("vgck", _pool);
        Assert.True(vgck == 0, output);
    }

    private Task<ControllerProcess> StartOnPortAsync(int port, string? faults) => ControllerProcess.StartAsync(_state,
        faults is null ? new Dictionary<string, string>() : new Dictionary<string, string> { [SharedLvm.Controller.Faults.FaultInjector.EnvironmentVariable] = faults },
        port, "--Controller:HeartbeatInterval", "00:00:01");

    /// <summary>A real agent (activation faked below IVolumeActivator, lvm seeing the loop device as the LU) following the controller on <paramref name="port"/>, READY.</summary>
    private async Task<InProcessAgent> StartAgentAsync(int port, FakeActivator activator)
    {
        await using var controller = await StartOnPortAsync(port, null);
        var agent = await InProcessAgent.StartOnLoopAsync(activator, _lu!, controller.Address);
        await controller.UntilNodeReadyAsync();
        return agent;
    }

    private IReadOnlyList<SharedLvm.Os.Lvm.ExtentRun> Runs(Volume volume)
    {
        var (code, output) = _lu!.Lvm("pvs", "--segments", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", SharedLvm.Os.Lvm.LvLayoutParser.Fields,
            "--select", $"lv_name=\"{volume.LvName}\"");
        Assert.True(code == 0, output);
        // The helper's output has lvm's stderr (warnings about the loop device) after the report.
        return SharedLvm.Os.Lvm.LvLayoutParser.Parse(output[..(output.LastIndexOf('}') + 1)])!.Runs;
    }

    private void WriteSecret(IReadOnlyList<SharedLvm.Os.Lvm.ExtentRun> runs)
    {
        using var file = new FileStream(_lu!.File, FileMode.Open, FileAccess.Write);
        foreach (var run in runs)
        {
            file.Position = (long)run.DeviceOffsetBytes;
            file.Write(Enumerable.Repeat((byte)0xA5, (int)run.LengthBytes).ToArray());
        }
    }

    private bool ReadsZeros(IReadOnlyList<SharedLvm.Os.Lvm.ExtentRun> runs)
    {
        using var file = new FileStream(_lu!.File, FileMode.Open, FileAccess.Read);
        foreach (var run in runs)
        {
            var data = new byte[run.LengthBytes];
            file.Position = (long)run.DeviceOffsetBytes;
            file.ReadExactly(data);
            if (data.AsSpan().ContainsAnyExcept((byte)0))
            {
                return false;
            }
        }

        return true;
    }

    private static async Task SendAttachAsync(ControllerProcess controller, Volume volume, bool attach)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        if (attach)
        {
            await controller.Client.AttachVolumeAsync(new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-1" }, deadline: deadline);
        }
        else
        {
            await controller.Client.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-1" }, deadline: deadline);
        }
    }

    /// <summary>
    /// Waits until the volume's owner tag, the API's attachments and the node's active LVs agree with
    /// nothing ATTACHING or DETACHING, and returns whether it is attached to node-1.
    /// </summary>
    private async Task<bool> SettledAsync(ControllerProcess controller, Volume volume, FakeActivator activator)
    {
        var attached = false;
        var last = string.Empty;
        try
        {
            await Eventually.TrueAsync(async () =>
            {
                var seen = await controller.Client.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id });
                var tagged = _lu!.LvTags(_pool, volume.LvName).Contains(OwnerTag.For("node-1"), StringComparison.Ordinal);
                var active = activator.IsActive(_pool, volume.LvName);
                last = $"tagged {tagged}, active {active}, API {seen.State}: {seen.Attachments}";
                attached = tagged;
                return seen.Attachments.All(a => a.State == AttachmentState.Attached)
                    && seen.Attachments.Select(a => a.Node).SequenceEqual(tagged ? ["node-1"] : [])
                    && active == tagged;
            }, "the attachment settled", TimeSpan.FromSeconds(30));
        }
        catch (Xunit.Sdk.FailException e)
        {
            Assert.Fail($"{e.Message} Last seen: {last}");
        }

        return attached;
    }

    private static (string Kind, Google.Protobuf.IMessage Request, string Name) NewCreate(int n) =>
        ("create", new CreateVolumeRequest { Name = $"vol-{n}", SizeBytes = 4 * MiB }, $"vol-{n}");

    private static (string Kind, Google.Protobuf.IMessage Request, string Name) OperationOn(string kind, KeyValuePair<string, (string Id, ulong Size)> volume, int n) => kind switch
    {
        "delete" => ("delete", new DeleteVolumeRequest { Id = volume.Value.Id }, volume.Key),
        "clone" => ("clone", new CloneVolumeRequest { SourceVolumeId = volume.Value.Id, Name = $"clone-{n}" }, $"clone-{n}"),
        "extend" => ("extend", new ExtendVolumeRequest { Id = volume.Value.Id, SizeBytes = volume.Value.Size + (4 * MiB) }, volume.Key),
        _ => ("labels", new SetVolumeLabelsRequest { Id = volume.Value.Id, Labels = { ["gen"] = n.ToString(CultureInfo.InvariantCulture) } }, volume.Key),
    };

    /// <summary>Sends the requests at once; records the answered ones, returns those the controller's death interrupted.</summary>
    private async Task<List<(string Kind, Google.Protobuf.IMessage Request, string Name)>> SendAllAsync(
        SharedLvm.Contracts.V1.Controller.ControllerClient client, IReadOnlyList<(string Kind, Google.Protobuf.IMessage Request, string Name)> ops, Dictionary<string, (string Id, ulong Size)> expected)
    {
        var outcomes = await Task.WhenAll(ops.Select(async op =>
        {
            try
            {
                return (op, Reply: await Send(client, op.Kind, op.Request), Failed: false);
            }
            catch (RpcException e) when (e.StatusCode is GrpcStatusCode.Unavailable or GrpcStatusCode.Internal or GrpcStatusCode.Unknown or GrpcStatusCode.Cancelled)
            {
                return (op, Reply: (Google.Protobuf.IMessage?)null, Failed: true);
            }
        }));
        foreach (var (op, reply, _) in outcomes.Where(o => !o.Failed))
        {
            Record(expected, op.Kind, op.Name, op.Request, reply!);
        }

        return outcomes.Where(o => o.Failed).Select(o => o.op).ToList();
    }

    /// <summary>A clean start: the API, the VG and what clients were told agree (no orphan, no phantom, no duplicate, vgck clean).</summary>
    private async Task AssertConvergedAsync(Dictionary<string, (string Id, ulong Size)> expected)
    {
        await using var final = await ControllerProcess.StartAsync(_state, faults: null);
        var listed = await final.Client.ListVolumesAsync(new ListVolumesRequest { Pool = _pool, PageSize = 1000 });
        var lvs = LvsInVg();
        _output.WriteLine($"{lvs.Count} volumes left");
        Assert.Equal(lvs.Count, lvs.Select(l => l.Name).Distinct().Count()); // no duplicate LV for one name
        Assert.Equal(lvs.Select(l => l.Id).Order(StringComparer.Ordinal), listed.Volumes.Select(v => v.Id).Order(StringComparer.Ordinal)); // no orphan, no phantom
        foreach (var (name, (id, size)) in expected)
        {
            var volume = Assert.Single(listed.Volumes, v => v.Name == name);
            Assert.Equal(id, volume.Id);
            Assert.Equal(size, volume.SizeBytes);
        }

        Assert.All(listed.Volumes, v => Assert.True(expected.ContainsKey(v.Name), $"volume {v.Name} exists but its create was never acknowledged nor retried"));
        var (vgck, output) = _lu!.Lvm("vgck", _pool);
        Assert.True(vgck == 0, output);
    }

    private static (string Kind, Google.Protobuf.IMessage Request, string Name)? NextOperation(Random random, Dictionary<string, (string Id, ulong Size)> existing, int n, HashSet<string> busy)
    {
        var roll = random.Next(100);
        var free = existing.Where(e => !busy.Contains(e.Key)).ToArray();
        if (free.Length < 3 || roll < 45)
        {
            var name = $"vol-{n}";
            return busy.Contains(name) ? null : ("create", new CreateVolumeRequest { Pool = string.Empty, Name = name, SizeBytes = (ulong)random.Next(1, 4) * 4 * MiB }, name);
        }

        var (victim, (id, size)) = free[random.Next(free.Length)];
        return roll switch
        {
            < 70 => ("delete", new DeleteVolumeRequest { Id = id }, victim),
            < 90 => ("extend", new ExtendVolumeRequest { Id = id, SizeBytes = size + (4 * MiB) }, victim),
            _ => ("labels", new SetVolumeLabelsRequest { Id = id, Labels = { ["gen"] = n.ToString(CultureInfo.InvariantCulture) } }, victim),
        };
    }

    private async Task<Google.Protobuf.IMessage> Send(SharedLvm.Contracts.V1.Controller.ControllerClient client, string kind, Google.Protobuf.IMessage request)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        if (request is CreateVolumeRequest create)
        {
            create.Pool = _pool;
        }

        return request switch
        {
            CreateVolumeRequest r => await client.CreateVolumeAsync(r, deadline: deadline),
            DeleteVolumeRequest r => await client.DeleteVolumeAsync(r, deadline: deadline),
            ExtendVolumeRequest r => await client.ExtendVolumeAsync(r, deadline: deadline),
            SetVolumeLabelsRequest r => await client.SetVolumeLabelsAsync(r, deadline: deadline),
            CloneVolumeRequest r => await client.CloneVolumeAsync(r, deadline: deadline),
            _ => throw new ArgumentException($"no {kind} call for {request.GetType().Name}", nameof(request)),
        };
    }

    private static void Record(Dictionary<string, (string Id, ulong Size)> expected, string kind, string name, Google.Protobuf.IMessage request, Google.Protobuf.IMessage reply)
    {
        switch (kind)
        {
            case "delete":
                expected.Remove(name);
                break;
            case "create":
                var created = (Volume)reply;
                Assert.Equal(name, created.Name);
                Assert.Equal(((CreateVolumeRequest)request).SizeBytes, created.SizeBytes);
                expected[name] = (created.Id, created.SizeBytes);
                break;
            case "clone":
                var clone = (Volume)reply;
                Assert.Equal((name, ((CloneVolumeRequest)request).SourceVolumeId), (clone.Name, clone.SourceVolumeId));
                expected[name] = (clone.Id, clone.SizeBytes);
                break;
            default:
                var volume = (Volume)reply;
                Assert.Equal(expected[name].Id, volume.Id);
                if (request is ExtendVolumeRequest extend)
                {
                    Assert.Equal(extend.SizeBytes, volume.SizeBytes);
                }

                expected[name] = (volume.Id, volume.SizeBytes);
                break;
        }
    }

    /// <summary>A SIGKILLed controller's lvm child keeps running and may still commit; let it finish.</summary>
    private void WaitForOrphanedLvm()
    {
        for (var i = 0; i < 200 && LoopDevice.Run("pgrep", "-f", $"lvm .*{_lu!.Device}").Code == 0; i++)
        {
            Thread.Sleep(25);
        }
    }

    private HashSet<string> LvNamesInVg() => LvsInVg().Select(l => l.Name).ToHashSet(StringComparer.Ordinal);

    private List<(string Id, string Name)> LvsInVg()
    {
        var (code, output) = _lu!.Lvm("lvs", "--noheadings", "--separator", "|", "-o", "lv_name,lv_tags", _pool);
        Assert.Equal(0, code);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("slvm-", StringComparison.Ordinal))
            .Select(l => l.Split('|'))
            .Select(p => (p[0]["slvm-".Length..], p[1].Split(',').Single(t => t.StartsWith("slvm_name=", StringComparison.Ordinal))["slvm_name=".Length..]))
            .ToList();
    }
}
