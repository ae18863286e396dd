using SharedLvm.Agent.Uplink;

namespace SharedLvm.Tests.Agent.Uplink;

/// <summary>The highest controller epoch a node has seen, durable across agent restarts.</summary>
public class EpochStoreTests
{
    [Fact]
    public void The_epoch_store_refuses_older_epochs_across_restarts()
    {
        var dir = Directory.CreateTempSubdirectory("slvm-epoch-").FullName;
        var store = new EpochStore(dir);
        Assert.True(store.Observe(5));
        Assert.True(store.Observe(5));
        var reopened = new EpochStore(dir);
        Assert.Equal(5UL, reopened.Highest);
        Assert.False(reopened.Observe(4));
        Directory.Delete(dir, recursive: true);
    }
}
