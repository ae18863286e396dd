using System.Globalization;
using System.Text;

namespace SharedLvm.Controller.Volumes;

/// <summary>
/// A volume's durable identity lives in its LV's name and tags, so a new controller host can rebuild
/// the whole catalogue from the VG alone. LVM tags allow only [A-Za-z0-9_+.-/=!:&amp;#] and 1,024
/// characters: anything else is encoded as "+XX" (hex of each UTF-8 byte), which also escapes '+'
/// and '=' so the key=value split is unambiguous.
/// </summary>
public static class LvTags
{
    /// <summary>Marks an LV as managed by SharedLvm.</summary>
    public const string Managed = "sharedlvm";
    public const string NamePrefix = "slvm_name=";
    public const string KindPrefix = "slvm_kind=";
    public const string SourcePrefix = "slvm_src=";
    public const string LabelPrefix = "slvm_l_";
    /// <summary>Present while a clone's data copy has not finished.</summary>
    public const string CopyPending = "slvm_copy_pending";
    /// <summary>
    /// activation/volume_list on node N is ["@sharedlvm_owner_N"]: LVM itself refuses to activate an
    /// LV not tagged for the node, so a stale command can't activate it.
    /// </summary>
    public const string OwnerPrefix = "sharedlvm_owner_";

    public static string Owner(string node) => OwnerPrefix + node;

    public static string Label(string key, string value) => LabelPrefix + Encode(key) + "=" + Encode(value);

    public static IEnumerable<string> LabelTags(IReadOnlyDictionary<string, string> labels) =>
        labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => Label(l.Key, l.Value));

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
