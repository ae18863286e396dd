namespace SharedLvm.Controller.Catalog;

/// <summary>Which volumes a list wants: every given filter must match.</summary>
public sealed record VolumeFilter(
    VolumeLifecycle? State = null,
    IReadOnlyDictionary<string, string>? Labels = null,
    string? Node = null)
{
    public bool Matches(PoolCatalog catalog, VolumeRecord volume) =>
        (Labels is null || Labels.All(s => volume.Labels.TryGetValue(s.Key, out var value) && string.Equals(value, s.Value, StringComparison.Ordinal)))
        && (Node is null || volume.IsOwnedBy(Node))
        && (State is null || catalog.StateOf(volume) == State);
}

/// <summary>One page of a list, and where the next one starts.</summary>
public sealed record VolumePage(IReadOnlyList<(PoolCatalog Catalog, VolumeRecord Volume)> Volumes, string NextPageToken, int Total);

/// <summary>
/// Filtering and paging over one or more pools' catalogues, by volume id (the page token is the last
/// id of the previous page, so a list stays stable while volumes come and go). Reads never run lvm:
/// a list stays cheap at 10,000 volumes.
/// </summary>
public static class VolumeQuery
{
    /// <remarks>
    /// One pass, keeping only the page's worth of smallest ids past the token (a bounded heap): no sort
    /// and no copy of every match per call. With 1,000 agents heartbeating against 8,000 volumes, the
    /// sort of every match was what put list(100) p99 at 31 ms (issue 18's goal is 20 ms).
    /// </remarks>
    public static VolumePage Page(IEnumerable<PoolCatalog> catalogs, VolumeFilter filter, string pageToken, int pageSize)
    {
        // Largest id on top, so the one to drop when a smaller id arrives is at hand. One more than a
        // page is kept: whether it exists says whether there is a next page.
        var keep = pageSize + 1;
        var heap = new PriorityQueue<(PoolCatalog Catalog, VolumeRecord Volume), string>(keep, Comparer<string>.Create((a, b) => string.CompareOrdinal(b, a)));
        var total = 0;
        foreach (var catalog in catalogs)
        {
            foreach (var volume in catalog.Snapshot())
            {
                if (!filter.Matches(catalog, volume))
                {
                    continue;
                }

                total++;
                if (pageToken.Length > 0 && string.CompareOrdinal(volume.Id, pageToken) <= 0)
                {
                    continue;
                }

                if (heap.Count < keep)
                {
                    heap.Enqueue((catalog, volume), volume.Id);
                }
                else if (string.CompareOrdinal(volume.Id, heap.Peek().Volume.Id) < 0)
                {
                    heap.DequeueEnqueue((catalog, volume), volume.Id);
                }
            }
        }

        var found = new (PoolCatalog Catalog, VolumeRecord Volume)[heap.Count];
        for (var i = found.Length - 1; i >= 0; i--)
        {
            found[i] = heap.Dequeue();
        }

        var page = found.Take(pageSize).ToList();
        var next = found.Length > pageSize ? page[^1].Volume.Id : string.Empty;
        return new VolumePage(page, next, total);
    }
}
