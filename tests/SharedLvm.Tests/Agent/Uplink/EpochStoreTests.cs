using SharedLvm.Agent.Uplink;

namespace SharedLvm.Tests.Agent.Uplink;

/// <summary>The highest controller epoch a node has seen and who held it, durable across agent restarts.</summary>
public sealed class EpochStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("slvm-epoch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Older_epochs_are_refused_across_restarts()
    {
        var store = new EpochStore(_dir);
        Assert.True(store.Observe(5, "c1"));
        Assert.True(store.Observe(5, "c1"));
        var reopened = new EpochStore(_dir);
        Assert.Equal(5UL, reopened.Highest);
        Assert.Equal("c1", reopened.Holder);
        Assert.False(reopened.Observe(4, "c1"));
        Assert.True(reopened.Observe(6, "c2"));
        Assert.False(reopened.Observe(5, "c1"));
    }

    [Fact]
    public void The_same_epoch_from_another_controller_is_refused_and_changes_nothing()
    {
        var store = new EpochStore(_dir);
        Assert.True(store.Observe(7, "c1"));
        Assert.False(store.Observe(7, "c2"));
        Assert.Equal("c1", new EpochStore(_dir).Holder);
    }

    [Fact]
    public void A_file_from_before_controller_ids_holds_the_number_alone_and_the_next_id_adopts_it()
    {
        File.WriteAllText(Path.Combine(_dir, "highest-epoch"), "9");
        var store = new EpochStore(_dir);
        Assert.Equal(9UL, store.Highest);
        Assert.False(store.Observe(8, "c1"));
        Assert.True(store.Observe(9, "c1"));
        Assert.False(store.Observe(9, "c2"));
        Assert.Equal("c1", new EpochStore(_dir).Holder);
    }
}
