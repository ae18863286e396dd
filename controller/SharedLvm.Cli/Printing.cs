using System.Globalization;
using SharedLvm.Contracts.V1;

namespace SharedLvm.Cli;

/// <summary>How slvm shows pools and volumes, and reads labels from the command line.</summary>
internal static class Printing
{
    public static Dictionary<string, string> ParseLabels(string[]? pairs) =>
        (pairs ?? []).Select(pair =>
        {
            var split = pair.IndexOf('=', StringComparison.Ordinal);
            return split > 0 ? (pair[..split], pair[(split + 1)..]) : throw new FormatException($"label '{pair}' is not key=value.");
        }).ToDictionary(p => p.Item1, p => p.Item2, StringComparer.Ordinal);

    public static void PrintPool(Output o, Pool x) => o.Message(x, () =>
    [
        ("name", x.Name), ("device", x.DevicePath), ("wwid", x.Wwid), ("size", Sizes.Format(x.SizeBytes)), ("free", Sizes.Format(x.FreeBytes)),
        ("extent size", Sizes.Format(x.ExtentSizeBytes)), ("volumes", x.VolumeCount.ToString(CultureInfo.InvariantCulture)),
        ("metadata free", $"{Sizes.Format(x.MetadataFreeBytes)} of {Sizes.Format(x.MetadataSizeBytes / 2)} usable"),
        ("seqno", x.Seqno.ToString(CultureInfo.InvariantCulture)), ("health", State(x.Health.ToString())),
        ("wipe on delete", State(x.WipeOnDelete == WipePolicy.Unspecified ? "zero" : x.WipeOnDelete.ToString())),
        ("snapshots", x.SnapshotsUnavailable.Length == 0 ? "available" : $"unavailable ({x.SnapshotsUnavailable})"),
        .. Reservations(x.Reservations),
        .. x.Warnings.Select(w => ("warning", w)),
    ]);

    /// <summary>"reservations" and a "key" line per registered key, as the last node to read them saw them.</summary>
    private static (string, string)[] Reservations(PoolReservations? r)
    {
        if (r is null)
        {
            return [("reservations", "not reported yet (no node has read this LU's keys)")];
        }

        var seen = $"read by {r.ReportedBy}{(r.ReportedAt is { } at ? " at " + at.ToDateTimeOffset().ToString("u", CultureInfo.InvariantCulture) : string.Empty)}";
        if (!r.Supported)
        {
            return [("reservations", $"unsupported by the LU: fences are declared only ({seen})")];
        }

        var holder = r.Holder == 0 ? "nobody holds the reservation" : $"held by {Owner(r.HolderNode)} (0x{r.Holder:x}, write exclusive, registrants only)";
        return [("reservations", $"{holder}; {r.Keys.Count} key(s) registered ({seen})"),
            .. r.Keys.Select(k => ("key", $"0x{k.Key:x} {Owner(k.Node)} on {k.Paths} path(s)"))];
    }

    private static string Owner(string node) => node.Length > 0 ? node : "NO NODE'S KEY";

    public static void PrintVolume(Output o, Volume v) => o.Message(v, () =>
    [
        ("id", v.Id), ("name", v.Name), ("pool", v.Pool), ("size", $"{Sizes.Format(v.SizeBytes)} ({v.SizeBytes.ToString(CultureInfo.InvariantCulture)} bytes)"),
        ("state", State(v.State.ToString())), ("kind", v.Kind.ToString().ToLowerInvariant()), ("device", $"/dev/{v.VgName}/{v.LvName}"),
        .. v.SourceVolumeId.Length > 0 ? [("source", v.SourceVolumeId)] : Array.Empty<(string, string)>(),
        .. v.Attachments.Select(a => ("attached", $"{a.Node} ({State(a.State.ToString())})")),
        .. v.Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => ("label", $"{l.Key}={l.Value}")),
        .. v.Progress is { } p ? [("progress", $"{p.Operation} on {p.Node}: {(p.TotalBytes == 0 ? 0 : 100.0 * p.DoneBytes / p.TotalBytes):0.#}% ({Sizes.Format(p.DoneBytes)} of {Sizes.Format(p.TotalBytes)}, {Sizes.Format(p.BytesPerSecond)}/s, ETA {p.EtaSeconds} s)")] : Array.Empty<(string, string)>(),
        .. v.Message.Length > 0 ? [("message", v.Message)] : Array.Empty<(string, string)>(),
    ]);

    public static string State(string enumName) => enumName.ToLowerInvariant();
}
