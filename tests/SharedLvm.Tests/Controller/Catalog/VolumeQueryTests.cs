using SharedLvm.Contracts.Conventions;
using SharedLvm.Controller.Catalog;
using SharedLvm.Os.Lvm;

namespace SharedLvm.Tests.Controller.Catalog;

/// <summary>Paging by id across pools: every volume once, in id order, with the filter's total.</summary>
public class VolumeQueryTests
{
    private const ulong MiB = 1024 * 1024;

    [Fact]
    public void Pages_walk_every_match_of_every_pool_once_in_id_order()
    {
        var (a, b) = (Catalog("a", 23), Catalog("b", 17));
        var filter = new VolumeFilter(Labels: new Dictionary<string, string> { ["tier"] = "gold" });
        var expected = new[] { a, b }.SelectMany(c => c.Snapshot()).Where(v => v.Labels["tier"] == "gold").Select(v => v.Id).Order(StringComparer.Ordinal).ToList();

        var seen = new List<string>();
        var token = string.Empty;
        var pages = 0;
        do
        {
            var page = VolumeQuery.Page([a, b], filter, token, pageSize: 4);
            Assert.Equal(expected.Count, page.Total);
            Assert.True(page.Volumes.Count <= 4);
            seen.AddRange(page.Volumes.Select(v => v.Volume.Id));
            token = page.NextPageToken;
            pages++;
        }
        while (token.Length > 0);

        Assert.Equal(expected, seen);
        Assert.Equal((expected.Count + 3) / 4, pages);
    }

    [Fact]
    public void A_page_that_ends_exactly_at_the_last_match_has_no_next_token()
    {
        var catalog = Catalog("a", 8);
        var first = VolumeQuery.Page([catalog], new VolumeFilter(), string.Empty, pageSize: 4);
        var second = VolumeQuery.Page([catalog], new VolumeFilter(), first.NextPageToken, pageSize: 4);

        Assert.Equal(first.Volumes[^1].Volume.Id, first.NextPageToken);
        Assert.Equal(4, second.Volumes.Count);
        Assert.Empty(second.NextPageToken);
    }

    [Fact]
    public void A_token_past_the_last_id_gives_an_empty_page_and_the_total()
    {
        var page = VolumeQuery.Page([Catalog("a", 3)], new VolumeFilter(), "zzzzzzzzzzzzzzzzzzzzzzzzzz", pageSize: 10);

        Assert.Empty(page.Volumes);
        Assert.Empty(page.NextPageToken);
        Assert.Equal(3, page.Total);
    }

    private static PoolCatalog Catalog(string pool, int volumes)
    {
        var catalog = new PoolCatalog(pool);
        catalog.Load(new FullReport(new VolumeGroup(pool, "vg-uuid", 1024 * MiB, 1024 * MiB, 4 * MiB, 256, 7, 0, 128 * MiB, 64 * MiB, []), [], []), []);
        for (var i = 0; i < volumes; i++)
        {
            var labels = new Dictionary<string, string> { ["tier"] = i % 3 == 0 ? "silver" : "gold" };
            catalog.Put(new VolumeRecord(VolumeId.New(), $"v{i}", pool, pool, 4 * MiB, VolumeKind.Standard, string.Empty, labels, null, false, []));
        }

        return catalog;
    }
}
