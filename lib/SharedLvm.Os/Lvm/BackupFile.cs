using System.Globalization;

namespace SharedLvm.Os.Lvm;

/// <summary>
/// lvm writes the VG's whole metadata text to backup_dir/&lt;vg&gt; after every change. Reading its
/// seqno and size after a write costs a file read instead of another lvm scan (~50-300 ms).
/// </summary>
public static class BackupFile
{
    public static (ulong Seqno, long SizeBytes)? Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            return null;
        }

        using var reader = new StreamReader(path);
        for (var i = 0; i < 64 && reader.ReadLine() is { } line; i++)
        {
            var trimmed = line.Trim();
            if (trimmed.StartsWith("seqno = ", StringComparison.Ordinal)
                && ulong.TryParse(trimmed.AsSpan("seqno = ".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var seqno))
            {
                return (seqno, info.Length);
            }
        }

        return null;
    }
}
