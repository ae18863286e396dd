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
    public static VolumePage Page(IEnumerable<PoolCatalog> catalogs, VolumeFilter filter, string pageToken, int pageSize)
    {
        var matches = catalogs
            .SelectMany(c => c.Snapshot().Select(v => (Catalog: c, Volume: v)))
            .Where(x => filter.Matches(x.Catalog, x.Volume))
            .OrderBy(x => x.Volume.Id, StringComparer.Ordinal)
            .ToList();
        var start = pageToken.Length == 0 ? 0 : matches.FindIndex(x => string.CompareOrdinal(x.Volume.Id, pageToken) > 0);
        if (start < 0)
        {
            return new VolumePage([], string.Empty, matches.Count);
        }

        var page = matches.Skip(start).Take(pageSize).ToList();
        var next = start + page.Count < matches.Count ? page[^1].Volume.Id : string.Empty;
        return new VolumePage(page, next, matches.Count);
    }
}
