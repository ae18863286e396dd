using System.Diagnostics;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller;
using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Lease;
using SharedLvm.Tests.Support;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Tests.Controller.Lease;

/// <summary>
/// The writer lease on a real sanlock: two controller processes, each with its own sanlock daemon
/// standing for its host (host ids 1 and 2, io_timeout 1 s, no watchdog), on one loop-device pool.
/// </summary>
[Collection(SanlockCollection.Name)]
public sealed class WriterLeaseTests : IAsyncLifetime
{
    private const ulong MiB = 1024 * 1024;
    private readonly ITestOutputHelper _output;
    private readonly LoopDevice? _lu = LoopDevice.Create(1L * 1024 * 1024 * 1024);
    private readonly string _pool = "lease" + Guid.NewGuid().ToString("N")[..6];
    private readonly List<string> _states = [];
    private readonly List<ControllerProcess> _controllers = [];
    private readonly List<(LoopDevice Lu, string Vg)> _extraPools = [];
    private SanlockDaemon? _host1;
    private SanlockDaemon? _host2;

    public WriterLeaseTests(ITestOutputHelper output)
    {
        _output = output;
    }

    public async ValueTask InitializeAsync()
    {
        if (_lu is null)
        {
            return;
        }

        _host1 = await SanlockDaemon.StartAsync();
        _host2 = await SanlockDaemon.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (TestContext.Current.TestState?.Result == TestResult.Failed)
        {
            _output.WriteLine("sanlock host 1:\n" + _host1?.Log + "\nsanlock host 2:\n" + _host2?.Log);
        }

        foreach (var controller in _controllers)
        {
            await controller.DisposeAsync();
        }

        _host1?.Dispose();
        _host2?.Dispose();
        foreach (var (lu, vg) in _extraPools)
        {
            lu.Lvm("vgremove", "-f", vg);
            lu.Dispose();
        }
        if (_lu is not null)
        {
            _lu.Lvm("vgremove", "-f", _pool);
            _lu.Dispose();
        }

        foreach (var state in _states)
        {
            Directory.Delete(state, recursive: true);
        }
    }

    [Fact]
    public async Task One_controller_is_active_and_a_killed_ones_successor_serves_everything_with_a_higher_epoch()
    {
        LoopDevice.Present(_lu);
        var a = await StartWithPoolAsync();
        var before = await a.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = _pool, Name = "before-takeover", SizeBytes = 8 * MiB });
        var epochA = (await a.Client.GetControllerStatusAsync(new GetControllerStatusRequest())).Epoch.Value;
        Assert.Contains(LeaseArea.LvName, _lu.Lvm("lvs", "--noheadings", "-o", "lv_name", _pool).Output, StringComparison.Ordinal);

        // B starts on an empty state directory on "another host": it finds the pool by its lease
        // area, and waits as a standby that points clients to A.
        var b = await StartAsync(_host2!, 2);
        await Task.Delay(TimeSpan.FromSeconds(6));
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, await ApiStatusAsync(b));
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await b.Client.ListVolumesAsync(new ListVolumesRequest()));
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.Equal(a.Address, refused.Trailers.GetValue(ActiveController.Trailer));
        var standby = await b.Client.GetControllerStatusAsync(new GetControllerStatusRequest());
        Assert.False(standby.Active);
        Assert.Equal(a.Address, standby.ActiveAddress);
        Assert.Equal(1u, standby.Pools); // found on the LU, loaded once it holds the lease

        var killed = Stopwatch.StartNew();
        await a.StopAsync();
        await WaitActiveAsync(b, TimeSpan.FromSeconds(30));
        _output.WriteLine($"standby active {killed.ElapsedMilliseconds} ms after the active controller was killed");
        var epochB = (await b.Client.GetControllerStatusAsync(new GetControllerStatusRequest())).Epoch.Value;
        Assert.True(epochB > epochA, $"epoch {epochB} after takeover, {epochA} before");
        Assert.Contains((await b.Client.ListVolumesAsync(new ListVolumesRequest { Pool = _pool })).Volumes, v => v.Id == before.Id);
        await b.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = _pool, Name = "after-takeover", SizeBytes = 8 * MiB });
    }

    [Fact]
    public async Task A_successor_on_an_empty_state_directory_keeps_fences_drains_reservation_numbers_and_policies_from_the_lu()
    {
        LoopDevice.Present(_lu);
        var a = await StartWithPoolAsync(); // wipe_on_delete NONE; a discovered pool would start with ZERO
        using var toA = GrpcChannel.ForAddress($"http://{a.Address}");
        var registryA = new NodeRegistry.NodeRegistryClient(toA);
        var fencedKey = (await RegisterAsync(registryA, "node-x")).Reservations.Key;
        // The only node is the victim: nobody can preempt, so the operator's fence is declared.
        await a.Client.FenceNodeAsync(new FenceNodeRequest { Name = "node-x", Reason = "hung, ticket 42" });
        var drainedKey = (await RegisterAsync(registryA, "node-y")).Reservations.Key;
        await a.Client.DrainNodeAsync(new DrainNodeRequest { Name = "node-y" });
        Assert.NotEqual(fencedKey, drainedKey);

        // A's host is lost with its state directory; B starts on an empty one on another host.
        var b = await StartAsync(_host2!, 2);
        await a.StopAsync();
        await WaitActiveAsync(b, TimeSpan.FromSeconds(30));

        var fenced = await b.Client.GetNodeAsync(new GetNodeRequest { Name = "node-x" });
        Assert.Equal(NodeState.Fenced, fenced.State);
        Assert.Contains("hung, ticket 42", fenced.ToString(), StringComparison.Ordinal);
        Assert.Equal(NodeState.Draining, (await b.Client.GetNodeAsync(new GetNodeRequest { Name = "node-y" })).State);
        Assert.Equal(WipePolicy.None, (await b.Client.GetPoolAsync(new GetPoolRequest { Name = _pool })).WipeOnDelete);

        // The fenced node's agent comes back: B keeps its key and does not let it register back in.
        using var toB = GrpcChannel.ForAddress($"http://{b.Address}");
        var registryB = new NodeRegistry.NodeRegistryClient(toB);
        var again = await RegisterAsync(registryB, "node-x");
        Assert.Equal(fencedKey, again.Reservations.Key);
        Assert.False(again.Reservations.Register, "a fenced node must not be told to register its key again");
        Assert.Equal(drainedKey, (await RegisterAsync(registryB, "node-y")).Reservations.Key);
        var newcomer = (await RegisterAsync(registryB, "node-z")).Reservations.Key;
        Assert.DoesNotContain(newcomer, new[] { fencedKey, drainedKey });
    }

    /// <summary>
    /// The bootstrap race: two controllers started on empty state directories with no pool anywhere.
    /// Only host 1's is active (the one that may create the first pool); host 2's stays a standby,
    /// refusing a pool of its own, until host 1's has created one; then it names host 1's as the
    /// active controller, and takes over with the pool when host 1's is killed.
    /// </summary>
    [Fact]
    public async Task With_no_pool_only_host_1_is_active_and_the_others_wait_for_its_first_pool()
    {
        LoopDevice.Present(_lu);
        var started = await Task.WhenAll(StartAsync(_host2!, 2), StartAsync(_host1!, 1));
        var (b, a) = (started[0], started[1]);
        await WaitActiveAsync(a, TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(3)); // every chance to (wrongly) become active as well
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, await ApiStatusAsync(b));
        var create = TheCreatePool;
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await b.Client.CreatePoolAsync(create));
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.True(_lu.Lvm("pvs", _lu.Device).Code != 0, "the standby's refused create wrote nothing: the LU is not even a PV");

        await a.Client.CreatePoolAsync(create);
        var volume = await a.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = _pool, Name = "first", SizeBytes = 8 * MiB });
        await Eventually.TrueAsync(async () => (await b.Client.GetControllerStatusAsync(new GetControllerStatusRequest())).ActiveAddress == a.Address,
            "host 2's controller found the first pool and names host 1's as the active one", TimeSpan.FromSeconds(30));
        Assert.False((await b.Client.GetControllerStatusAsync(new GetControllerStatusRequest())).Active);

        await a.StopAsync();
        await WaitActiveAsync(b, TimeSpan.FromSeconds(30));
        Assert.Contains((await b.Client.ListVolumesAsync(new ListVolumesRequest { Pool = _pool })).Volumes, v => v.Id == volume.Id);
    }

    /// <summary>
    /// The LU is the journal of attaches and detaches (issue 16, "takeover converges"). A is killed
    /// right after an attach wrote the owner tag, before the node was asked to activate; B, on an
    /// empty state directory on the other host, completes that attach with no client retrying it: the
    /// node activates and the API shows the device. B is then killed right after the node confirmed a
    /// detach, before the tag was removed; C, on another empty state directory, finishes the detach.
    /// A real agent (its activation faked below IVolumeActivator) follows the three controllers.
    /// </summary>
    [Fact]
    public async Task Attaches_and_detaches_left_in_flight_are_finished_by_a_successor_on_an_empty_state_directory()
    {
        LoopDevice.Present(_lu);
        int[] ports = [FreePort.Next(), FreePort.Next(), FreePort.Next()];
        var a = await StartAsync(_host1!, 1, "attach.after_lvm", port: ports[0]);
        await WaitActiveAsync(a, TimeSpan.FromSeconds(30));
        await a.Client.CreatePoolAsync(TheCreatePool);
        var volume = await a.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = _pool, Name = "half-attached", SizeBytes = 8 * MiB });
        var activator = new FakeActivator(_lu, "node-1");
        await using var agent = await InProcessAgent.StartOnLoopAsync(activator, _lu, string.Join(',', ports.Select(p => $"127.0.0.1:{p}")));
        var attach = new AttachVolumeRequest { VolumeId = volume.Id, Node = "node-1" };
        await a.UntilNodeReadyAsync();
        await Assert.ThrowsAsync<RpcException>(async () => await a.Client.AttachVolumeAsync(attach, deadline: DateTime.UtcNow.AddSeconds(60)));
        await KilledAtAsync(a, "attach.after_lvm");
        Assert.True(Tagged(volume), "A was killed after the owner tag was written");
        Assert.False(activator.IsActive(_pool, volume.LvName));

        var b = await StartAsync(_host2!, 2, "detach.after_deactivate", port: ports[1]);
        await WaitActiveAsync(b, TimeSpan.FromSeconds(30));
        Volume? attached = null;
        await Eventually.TrueAsync(async () =>
        {
            attached = await b.Client.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id });
            return attached.State == VolumeState.Attached && attached.Attachments.Single().Device?.Path.Length > 0;
        }, "B completed the attach A left in flight", TimeSpan.FromSeconds(60));
        _output.WriteLine($"B completed the attach: {attached!.Attachments.Single()}");
        Assert.True(activator.IsActive(_pool, volume.LvName));

        await Assert.ThrowsAsync<RpcException>(async () => await b.Client.DetachVolumeAsync(new DetachVolumeRequest { VolumeId = volume.Id, Node = "node-1" }, deadline: DateTime.UtcNow.AddSeconds(60)));
        await KilledAtAsync(b, "detach.after_deactivate");
        Assert.True(Tagged(volume), "B was killed before the owner tag was removed");
        Assert.False(activator.IsActive(_pool, volume.LvName));

        var c = await StartAsync(_host1!, 1, port: ports[2]);
        await WaitActiveAsync(c, TimeSpan.FromSeconds(60));
        await Eventually.TrueAsync(async () => (await c.Client.GetVolumeAsync(new GetVolumeRequest { Id = volume.Id })).State == VolumeState.Available && !Tagged(volume),
            "C finished the detach B left in flight", TimeSpan.FromSeconds(60));
        Assert.False(activator.IsActive(_pool, volume.LvName));
        await c.Client.AttachVolumeAsync(attach);
        Assert.True(activator.IsActive(_pool, volume.LvName));
    }

    /// <summary>The test's pool on its LU, as every test here creates it.</summary>
    private CreatePoolRequest TheCreatePool => new() { Name = _pool, DevicePath = _lu!.Device, Mode = PoolCreateMode.Initialize, MetadataSizeBytes = 8 * MiB, WipeOnDelete = WipePolicy.None };

    private bool Tagged(Volume volume) =>
        _lu!.LvTags(_pool, volume.LvName).Contains(OwnerTag.For("node-1"), StringComparison.Ordinal);

    [Fact]
    public async Task Killed_at_every_lease_and_takeover_step_the_next_controller_converges()
    {
        LoopDevice.Present(_lu);
        var active = await StartWithPoolAsync();
        await active.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = _pool, Name = "kept", SizeBytes = 8 * MiB });
        using (var channel = GrpcChannel.ForAddress($"http://{active.Address}"))
        {
            await RegisterAsync(new NodeRegistry.NodeRegistryClient(channel), "node-d");
        }

        await active.Client.DrainNodeAsync(new DrainNodeRequest { Name = "node-d" });
        var epoch = (await active.Client.GetControllerStatusAsync(new GetControllerStatusRequest())).Epoch.Value;

        // Takeovers: a standby armed with the point takes over from the stopped active controller and
        // is killed there; a clean controller then takes over from it. Each point CrashKills.PerPoint times.
        foreach (var point in (string[])["lease.after_acquire", "lease.after_epoch", "marks.after_write"])
        {
            for (var round = 0; round < CrashKills.PerPoint; round++)
            {
                var armed = await StartAsync(_host2!, 2, point);
                await active.StopAsync();
                await KilledAtAsync(armed, point);
                active = await StartAsync(_host1!, 1);
                await WaitActiveAsync(active, TimeSpan.FromSeconds(60));
                var now = (await active.Client.GetControllerStatusAsync(new GetControllerStatusRequest())).Epoch.Value;
                Assert.True(now > epoch, $"after a kill at {point}: epoch {now}, before {epoch}");
                epoch = now;
                Assert.Contains((await active.Client.ListVolumesAsync(new ListVolumesRequest { Pool = _pool })).Volumes, v => v.Name == "kept");
                Assert.Equal(NodeState.Draining, (await active.Client.GetNodeAsync(new GetNodeRequest { Name = "node-d" })).State);
            }
        }

        // A pool's creation killed between its lease area's lvcreate and the format: nobody could join
        // that area until the retry formats it.
        for (var round = 0; round < CrashKills.PerPoint; round++)
        {
            var lu = LoopDevice.Create(64L * 1024 * 1024)!;
            var name = $"{_pool}k{round}";
            _extraPools.Add((lu, name));
            await active.StopAsync();
            var armed = await StartAsync(_host1!, 1, "lease.after_area_lvcreate");
            await WaitActiveAsync(armed, TimeSpan.FromSeconds(60));
            var create = new CreatePoolRequest { Name = name, DevicePath = lu.Device, Mode = PoolCreateMode.Initialize, MetadataSizeBytes = 8 * MiB, WipeOnDelete = WipePolicy.None };
            await Assert.ThrowsAsync<RpcException>(async () => await armed.Client.CreatePoolAsync(create));
            await KilledAtAsync(armed, "lease.after_area_lvcreate");
            Assert.Contains(LeaseArea.LvName, lu.Lvm("lvs", "--noheadings", "-o", "lv_name", name).Output, StringComparison.Ordinal);

            active = await StartAsync(_host1!, 1);
            await WaitActiveAsync(active, TimeSpan.FromSeconds(60));
            await active.Client.CreatePoolAsync(create, deadline: DateTime.UtcNow.AddSeconds(90));
            await active.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = name, Name = "after-retry", SizeBytes = 8 * MiB });
        }
    }

    /// <summary>
    /// The writes that are not volume writes, each fault point armed alone on host 1 and killed
    /// (<see cref="CrashKills.PerPoint"/> times), the request retried on a clean restart: a pool's
    /// creation on a blank LU and adoption of a VG made outside, a drain, a resume, and an operator's
    /// fence at each of its steps. Then a successor on host 2 with an empty state directory must show,
    /// from the LUs alone, every pool with its wipe policy and the node as the last request left it.
    /// </summary>
    [Fact]
    public async Task Each_pool_drain_resume_and_fence_point_killed_converges()
    {
        LoopDevice.Present(_lu);
        var active = await StartWithPoolAsync();
        using (var channel = GrpcChannel.ForAddress($"http://{active.Address}"))
        {
            await RegisterAsync(new NodeRegistry.NodeRegistryClient(channel), "node-k");
        }

        // Host 1's controller restarts on its own state directory, configured with every pool's LU.
        var state = Directory.CreateTempSubdirectory("slvm-lease-").FullName;
        _states.Add(state);
        var poolDevices = new List<string>();
        async Task KilledThenRetriedAsync<T>(string point, Func<ControllerRpc.ControllerClient, CallOptions, AsyncUnaryCall<T>> call)
        {
            await active.StopAsync();
            var armed = await StartAsync(_host1!, 1, point, poolDevices, state);
            await WaitActiveAsync(armed, TimeSpan.FromSeconds(60));
            await Assert.ThrowsAsync<RpcException>(async () => await call(armed.Client, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(60))));
            await KilledAtAsync(armed, point);
            active = await StartAsync(_host1!, 1, poolDevices: poolDevices, state: state);
            await WaitActiveAsync(active, TimeSpan.FromSeconds(60));
            await call(active.Client, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(90)));
        }

        foreach (var (mode, point) in ((string[])["pool.after_pvcreate", "pool.after_vgcreate", "pool.after_lease", "pool.after_store"]).Select(p => (PoolCreateMode.Initialize, p))
            .Concat(((string[])["pool.after_lease", "pool.after_store"]).Select(p => (PoolCreateMode.Adopt, p))))
        {
            for (var round = 0; round < CrashKills.PerPoint; round++)
            {
                var lu = LoopDevice.Create(64L * 1024 * 1024)!;
                var name = $"{_pool}{(mode == PoolCreateMode.Adopt ? 'a' : 'i')}{poolDevices.Count}";
                _extraPools.Add((lu, name));
                poolDevices.Add(lu.Device);
                if (mode == PoolCreateMode.Adopt)
                {
                    Assert.Equal(0, lu.Lvm("vgcreate", name, lu.Device).Code);
                }

                var create = new CreatePoolRequest { Name = name, DevicePath = lu.Device, Mode = mode, MetadataSizeBytes = 8 * MiB, WipeOnDelete = WipePolicy.None };
                await KilledThenRetriedAsync(point, (client, options) => client.CreatePoolAsync(create, options));
                await active.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = name, Name = "after-retry", SizeBytes = 8 * MiB });
            }

            _output.WriteLine($"{mode} {point}: killed {CrashKills.PerPoint} times");
        }

        foreach (var point in (string[])["drain.after_state", "resume.after_state", "fence.after_intent", "fence.after_preempt", "fence.after_mark"])
        {
            for (var round = 0; round < CrashKills.PerPoint; round++)
            {
                // From where the request starts: READY-or-UNREACHABLE for a drain or fence, DRAINING for a resume.
                await active.Client.ResumeNodeAsync(new ResumeNodeRequest { Name = "node-k" });
                if (point == "resume.after_state")
                {
                    await active.Client.DrainNodeAsync(new DrainNodeRequest { Name = "node-k" });
                }

                await KilledThenRetriedAsync<Node>(point, point switch
                {
                    "drain.after_state" => (client, options) => client.DrainNodeAsync(new DrainNodeRequest { Name = "node-k" }, options),
                    "resume.after_state" => (client, options) => client.ResumeNodeAsync(new ResumeNodeRequest { Name = "node-k" }, options),
                    _ => (client, options) => client.FenceNodeAsync(new FenceNodeRequest { Name = "node-k", Reason = $"crash test, {point}" }, options),
                });
                var expected = point switch
                {
                    "drain.after_state" => NodeState.Draining,
                    "resume.after_state" => NodeState.Unreachable, // it never heartbeats
                    _ => NodeState.Fenced,
                };
                Assert.Equal(expected, (await active.Client.GetNodeAsync(new GetNodeRequest { Name = "node-k" })).State);
            }

            _output.WriteLine($"{point}: killed {CrashKills.PerPoint} times");
        }

        // What the LUs say: a successor on another host, with nothing local, starts from them alone.
        var successor = await StartAsync(_host2!, 2, poolDevices: poolDevices);
        await active.StopAsync();
        await WaitActiveAsync(successor, TimeSpan.FromSeconds(60));
        var fenced = await successor.Client.GetNodeAsync(new GetNodeRequest { Name = "node-k" });
        Assert.Equal(NodeState.Fenced, fenced.State);
        Assert.Contains("crash test, fence.after_mark", fenced.ToString(), StringComparison.Ordinal);
        var listed = (await successor.Client.ListPoolsAsync(new ListPoolsRequest())).Pools;
        Assert.Equal(_extraPools.Select(p => $"{p.Vg}: None").Order(StringComparer.Ordinal),
            listed.Where(p => p.Name != _pool).Select(p => $"{p.Name}: {p.WipeOnDelete}").Order(StringComparer.Ordinal));
        foreach (var (_, name) in _extraPools)
        {
            Assert.Contains((await successor.Client.ListVolumesAsync(new ListVolumesRequest { Pool = name })).Volumes, v => v.Name == "after-retry");
        }
    }

    /// <summary>Waits for a controller armed with a fault point to die there.</summary>
    private static async Task KilledAtAsync(ControllerProcess controller, string point)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!controller.HasExited && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var stderr = await controller.StopAsync();
        Assert.Contains($"FAULT INJECTED at {point}", stderr, StringComparison.Ordinal);
    }

    private static async Task<RegisterNodeResponse> RegisterAsync(NodeRegistry.NodeRegistryClient registry, string node) =>
        await registry.RegisterNodeAsync(new RegisterNodeRequest { NodeName = node, Address = "127.0.0.1:9", AgentVersion = "test" });

    [Fact]
    public async Task A_paused_controller_whose_lease_was_taken_writes_nothing_and_stops()
    {
        LoopDevice.Present(_lu);
        var a = await StartWithPoolAsync();
        var b = await StartAsync(_host2!, 2);

        // The whole host stops: the controller and its sanlock daemon (a paused VM). Its delta lease
        // goes stale; after 8 x io_timeout + 60 s (sanlock 3.8.5's fixed watchdog time) B may take over.
        ProcessSignals.Pause(a.Pid);
        _host1!.Pause();
        var paused = Stopwatch.StartNew();
        await WaitActiveAsync(b, TimeSpan.FromSeconds(120));
        _output.WriteLine($"standby active {paused.ElapsedMilliseconds} ms after the active host paused");
        await b.Client.CreateVolumeAsync(new CreateVolumeRequest { Pool = _pool, Name = "by-b", SizeBytes = 8 * MiB });

        // A wakes up with a write in hand, before its sanlock daemon does (which would SIGKILL it at
        // once, as it does when the whole host resumes): A's own check of the leader record on the
        // disk must refuse the write, and A must stop (exit 75, EX_TEMPFAIL) for systemd to restart it
        // as a standby.
        ProcessSignals.Resume(a.Pid);
        var late = await Assert.ThrowsAnyAsync<RpcException>(async () => await a.Client.CreateVolumeAsync(
            new CreateVolumeRequest { Pool = _pool, Name = "by-deposed-a", SizeBytes = 8 * MiB }, deadline: DateTime.UtcNow.AddSeconds(30)));
        _output.WriteLine($"A's late create: {late.StatusCode} {late.Status.Detail}");
        Assert.Equal(StatusCode.Unavailable, late.StatusCode);
        Assert.DoesNotContain("by-deposed-a", _lu.Lvm("lvs", "-o", "lv_name,lv_tags", _pool).Output, StringComparison.Ordinal);
        var exited = Stopwatch.StartNew();
        while (!a.HasExited && exited.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(100);
        }

        var stderr = await a.StopAsync();
        Assert.Contains("LOST", stderr, StringComparison.Ordinal);
        Assert.Equal(SharedLvm.Hosting.Daemon.TemporaryFailure, a.ExitCode);
        _host1.Resume();
        Assert.Contains((await b.Client.ListVolumesAsync(new ListVolumesRequest { Pool = _pool })).Volumes, v => v.Name == "by-b");
    }

    [Fact]
    public async Task Simultaneous_starts_always_end_with_exactly_one_writer()
    {
        LoopDevice.Present(_lu);
        await using (var setup = await StartWithPoolAsync())
        {
            _controllers.Remove(setup);
        }

        var rounds = int.Parse(Environment.GetEnvironmentVariable("SHAREDLVM_LEASE_ROUNDS") ?? "20", System.Globalization.CultureInfo.InvariantCulture);
        var wins = new int[2];
        for (var round = 0; round < rounds; round++)
        {
            var started = await Task.WhenAll(StartAsync(_host1!, 1), StartAsync(_host2!, 2));
            var first = await Task.WhenAny(started.Select(async c => { await WaitActiveAsync(c, TimeSpan.FromSeconds(60)); return c; }));
            var winner = await first;
            // Give the loser every chance to (wrongly) become active as well.
            await Task.Delay(TimeSpan.FromSeconds(3));
            var states = await Task.WhenAll(started.Select(ApiStatusAsync));
            Assert.Equal(1, states.Count(s => s == HealthCheckResponse.Types.ServingStatus.Serving));
            wins[Array.IndexOf(started, winner)]++;
            foreach (var controller in started)
            {
                await controller.StopAsync();
                _controllers.Remove(controller);
                await controller.DisposeAsync();
            }
        }

        _output.WriteLine($"{rounds} rounds: host 1 won {wins[0]}, host 2 won {wins[1]}");
    }

    /// <summary>Host 1's controller, active, with the pool created through it (and its lease area).</summary>
    private async Task<ControllerProcess> StartWithPoolAsync()
    {
        var controller = await StartAsync(_host1!, 1);
        await WaitActiveAsync(controller, TimeSpan.FromSeconds(30));
        await controller.Client.CreatePoolAsync(TheCreatePool);
        return controller;
    }

    private async Task<ControllerProcess> StartAsync(SanlockDaemon host, int hostId, string? faultPoint = null, IEnumerable<string>? poolDevices = null, string? state = null,
        int? port = null)
    {
        if (state is null)
        {
            state = Directory.CreateTempSubdirectory("slvm-lease-").FullName;
            _states.Add(state);
        }

        var environment = host.Environment.ToDictionary();
        if (faultPoint is not null)
        {
            environment[SharedLvm.Controller.Faults.FaultInjector.EnvironmentVariable] = $"p=1;points={faultPoint}";
        }

        var controller = await ControllerProcess.StartAsync(state, environment, port ?? FreePort.Next(),
            "--lease", "sanlock", "--host-id", hostId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--lease-io-timeout", "1", "--pool-devices", string.Join(',', (poolDevices ?? []).Prepend(_lu!.Device)), "--Controller:HeartbeatInterval", "00:00:01");
        _controllers.Add(controller);
        return controller;
    }

    private static async Task<HealthCheckResponse.Types.ServingStatus> ApiStatusAsync(ControllerProcess controller)
    {
        try
        {
            return (await controller.Health.CheckAsync(new HealthCheckRequest { Service = "sharedlvm.v1.Controller" }, deadline: DateTime.UtcNow.AddSeconds(5))).Status;
        }
        catch (RpcException) when (controller.HasExited)
        {
            Assert.Fail($"controller {controller.Address} exited ({controller.ExitCode}): {await controller.StopAsync()}");
            throw;
        }
    }

    private static async Task WaitActiveAsync(ControllerProcess controller, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (await ApiStatusAsync(controller) != HealthCheckResponse.Types.ServingStatus.Serving)
        {
            Assert.True(DateTime.UtcNow < deadline, $"controller {controller.Address} did not become active within {timeout.TotalSeconds} s");
            if (controller.HasExited)
            {
                Assert.Fail($"controller {controller.Address} exited ({controller.ExitCode}): {await controller.StopAsync()}");
            }

            await Task.Delay(200);
        }
    }
}

/// <summary>Tests with sanlock daemons run one at a time: lease timings are what they measure.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SanlockCollection
{
    public const string Name = "sanlock";
}
