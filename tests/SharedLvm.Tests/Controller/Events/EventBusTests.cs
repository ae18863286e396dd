using SharedLvm.Contracts.Conventions;
using SharedLvm.Contracts.V1;
using SharedLvm.Controller.Catalog;
using SharedLvm.Controller.Events;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Controller.Events;

/// <summary>Sequence-numbered events: replay after a disconnect, filters, slow watchers, payloads.</summary>
public class EventBusTests
{
    [Fact]
    public async Task A_watcher_resumes_after_its_last_sequence_without_gaps()
    {
        var bus = new EventBus();
        bus.Publish(EventKind.NodeChanged, "node-a", "one");
        bus.Publish(EventKind.NodeChanged, "node-a", "two");
        bus.Publish(EventKind.Alarm, "pool", "three");
        var seen = new List<Event>();
        await foreach (var e in bus.WatchAsync(afterSequence: 1, new HashSet<EventKind>(), Timeout()))
        {
            seen.Add(e);
            if (seen.Count == 2)
            {
                bus.Publish(EventKind.NodeChanged, "node-b", "four");
            }

            if (seen.Count == 3)
            {
                break;
            }
        }

        Assert.Equal([2UL, 3, 4], seen.Select(e => e.Sequence));
        Assert.Equal(["two", "three", "four"], seen.Select(e => e.Message));
    }

    [Fact]
    public async Task Kinds_filter_what_a_watcher_gets()
    {
        var bus = new EventBus();
        var watch = bus.WatchAsync(0, new HashSet<EventKind> { EventKind.Alarm }, Timeout()).GetAsyncEnumerator();
        var next = watch.MoveNextAsync();
        bus.Publish(EventKind.NodeChanged, "node-a", "n");
        bus.Alarm("pool", "a");
        Assert.True(await next);
        Assert.Equal((EventKind.Alarm, "a"), (watch.Current.Kind, watch.Current.Message));
        Assert.Equal(1, bus.AlarmCount);
        await watch.DisposeAsync();
    }

    [Fact]
    public async Task A_watcher_that_falls_too_far_behind_is_ended_to_resume_rather_than_silently_losing_events()
    {
        var bus = new EventBus();
        var watch = bus.WatchAsync(0, new HashSet<EventKind>(), Timeout()).GetAsyncEnumerator();
        var first = watch.MoveNextAsync();
        for (var i = 0; i <= EventBus.Retained + 1; i++)
        {
            bus.Publish(EventKind.NodeChanged, "n", "e");
        }

        Assert.True(await first);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
        {
            while (await watch.MoveNextAsync())
            {
            }
        });
        Assert.Contains("resume with after_sequence", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_volume_event_carries_the_volume_as_it_is_once_the_change_is_done()
    {
        var bus = new EventBus();
        var catalog = new PoolCatalog("pool");
        catalog.Load(new FullReport(new VolumeGroup("pool", "u", 1UL << 30, 1UL << 30, 4UL << 20, 256, 1, 0, 1UL << 20, 1UL << 19, []), [], []), []);
        var volume = new VolumeRecord(VolumeId.New(), "web", "pool", "pool", 8UL << 20, SharedLvm.Controller.Catalog.VolumeKind.Standard, string.Empty,
            new Dictionary<string, string> { ["tier"] = "gold" }, null, false, []);
        catalog.Put(volume);
        var watch = bus.WatchAsync(0, new HashSet<EventKind>(), Timeout()).GetAsyncEnumerator();
        var next = watch.MoveNextAsync();
        using (catalog.Claim("create", PoolCatalog.NameKey("web")))
        {
            // Published while the create still holds its claim: the payload is the state after it.
            bus.VolumeChanged(catalog, volume, "created");
        }

        Assert.True(await next);
        var e = watch.Current;
        Assert.Equal((EventKind.VolumeChanged, volume.Id), (e.Kind, e.Subject));
        Assert.Equal((volume.Id, "web", VolumeState.Available, "gold"), (e.Volume.Id, e.Volume.Name, e.Volume.State, e.Volume.Labels["tier"]));
        await watch.DisposeAsync();
    }

    private static CancellationToken Timeout() => new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token;
}
