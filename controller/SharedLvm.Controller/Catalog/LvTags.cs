using System.Globalization;
using System.Text;
using SharedLvm.Contracts.Conventions;

namespace SharedLvm.Controller.Catalog;

/// <summary>
/// A volume's durable identity lives in its LV's name and tags, so a new controller host can rebuild
/// the whole catalogue from the VG alone. LVM tags allow only [A-Za-z0-9_+.-/=!:&amp;#] and 1,024
/// characters: anything else is encoded as "+XX" (hex of each UTF-8 byte), which also escapes '+'
/// and '=' so the key=value split is unambiguous. The owner tag is the contract's
/// (<see cref="OwnerTag"/>): agents read it too.
/// </summary>
public static class LvTags
{
    /// <summary>Marks an LV as managed by SharedLvm.</summary>
    public const string Managed = "sharedlvm";
    public const string NamePrefix = "slvm_name=";
    public const string KindPrefix = "slvm_kind=";
    public const string SourcePrefix = "slvm_src=";
    public const string LabelPrefix = "slvm_l_";

    /// <summary>Present while a clone's data copy has not finished (<see cref="DataTags.CopyPending"/>).</summary>
    public const string CopyPending = DataTags.CopyPending;

    /// <summary>Present while a deleted volume's extents are being wiped (<see cref="DataTags.WipePending"/>).</summary>
    public const string WipePending = DataTags.WipePending;

    /// <summary>A second holder is accepted only while this is present (<see cref="OwnerTag.Shared"/>).</summary>
    public const string MultiAttach = OwnerTag.Shared;

    /// <summary>Every tag of <paramref name="record"/>'s LV.</summary>
    public static IReadOnlySet<string> Of(VolumeRecord record)
    {
        var tags = new HashSet<string>(StringComparer.Ordinal) { Managed, NamePrefix + record.Name };
        if (record.Kind != VolumeKind.Standard)
        {
            tags.Add(KindPrefix + record.Kind.ToString().ToLowerInvariant());
            tags.Add(SourcePrefix + record.SourceVolumeId);
        }

        if (record.CopyPending)
        {
            tags.Add(CopyPending);
        }

        if (record.MultiAttach)
        {
            tags.Add(MultiAttach);
        }

        if (record.WipePending)
        {
            tags.Add(WipePending);
        }

        tags.UnionWith(LabelTags(record.Labels));
        tags.UnionWith(record.Owners.Select(OwnerTag.For));
        return tags;
    }

    public static string Label(string key, string value) => LabelPrefix + Encode(key) + "=" + Encode(value);

    public static IEnumerable<string> LabelTags(IReadOnlyDictionary<string, string> labels) =>
        labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => Label(l.Key, l.Value));

    /// <summary>The value of the first tag with <paramref name="prefix"/>, or "".</summary>
    public static string Value(IEnumerable<string> tags, string prefix) =>
        tags.FirstOrDefault(t => t.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..] ?? string.Empty;

    public static Dictionary<string, string> Labels(IEnumerable<string> tags)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var tag in tags)
        {
            if (TryParseLabel(tag, out var key, out var value))
            {
                labels[key] = value;
            }
        }

        return labels;
    }

    public static bool TryParseLabel(string tag, out string key, out string value)
    {
        key = value = string.Empty;
        if (!tag.StartsWith(LabelPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var body = tag[LabelPrefix.Length..];
        var split = body.IndexOf('=', StringComparison.Ordinal);
        if (split < 0)
        {
            return false;
        }

        key = Decode(body[..split]);
        value = Decode(body[(split + 1)..]);
        return true;
    }

    public static string Encode(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            var c = (char)b;
            if (b < 0x80 && (char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
            {
                builder.Append(c);
            }
            else
            {
                builder.Append('+').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }

    public static string Decode(string encoded)
    {
        var bytes = new List<byte>(encoded.Length);
        for (var i = 0; i < encoded.Length; i++)
        {
            if (encoded[i] == '+' && i + 2 < encoded.Length
                && byte.TryParse(encoded.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                bytes.Add((byte)encoded[i]);
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }
}
