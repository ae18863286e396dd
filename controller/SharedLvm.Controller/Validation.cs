using System.Text;
using System.Text.RegularExpressions;
using SharedLvm.Contracts.Conventions;

namespace SharedLvm.Controller;

/// <summary>Input checks for every API field; a failure changes nothing and says which field and why.</summary>
public static partial class Validation
{
    public const int MaxLabels = 32;
    public const int MaxLabelValueBytes = 256;

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex VolumeNamePattern();

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.+-]{0,62}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex PoolNamePattern();

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex LabelKeyPattern();

    [GeneratedRegex("^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?\\z", RegexOptions.CultureInvariant)]
    private static partial Regex NodeNamePattern();

    [GeneratedRegex("^[0-9a-fA-F]{1,64}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex WwidPattern();

    public static void VolumeName(string field, string name)
    {
        if (!VolumeNamePattern().IsMatch(name))
        {
            throw ControllerException.Invalid(
                $"{field} '{Shorten(name)}' is invalid: 1-63 characters of letters, digits, '_', '.', '-', starting with a letter or digit.");
        }
    }

    public static void PoolName(string field, string name)
    {
        if (!PoolNamePattern().IsMatch(name) || name is "." or "..")
        {
            throw ControllerException.Invalid(
                $"{field} '{Shorten(name)}' is invalid: 1-63 characters of letters, digits, '_', '.', '+', '-', starting with a letter or digit (it is the VG name).");
        }
    }

    public static void NodeName(string field, string name)
    {
        if (!NodeNamePattern().IsMatch(name))
        {
            throw ControllerException.Invalid(
                $"{field} '{Shorten(name)}' is invalid: a lowercase DNS label-like name (a-z, 0-9, '.', '-'), 1-63 characters.");
        }
    }

    public static void Wwid(string field, string wwid)
    {
        if (!WwidPattern().IsMatch(wwid))
        {
            throw ControllerException.Invalid($"{field} '{Shorten(wwid)}' is invalid: a SCSI WWID in hex, e.g. 35000c500a0000001.");
        }
    }

    public static void Id(string field, string id)
    {
        if (!VolumeId.IsValid(id))
        {
            throw ControllerException.Invalid($"{field} '{Shorten(id)}' is not a volume id (26 characters a-z, 2-7).");
        }
    }

    public static void Labels(string field, IReadOnlyDictionary<string, string> labels)
    {
        if (labels.Count > MaxLabels)
        {
            throw ControllerException.Invalid($"{field}: at most {MaxLabels} labels, got {labels.Count}.");
        }

        foreach (var (key, value) in labels)
        {
            if (!LabelKeyPattern().IsMatch(key))
            {
                throw ControllerException.Invalid(
                    $"{field}: key '{Shorten(key)}' is invalid: 1-63 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit.");
            }

            if (Encoding.UTF8.GetByteCount(value) > MaxLabelValueBytes)
            {
                throw ControllerException.Invalid($"{field}: value of '{key}' is longer than {MaxLabelValueBytes} bytes.");
            }

            if (value.Any(char.IsControl))
            {
                // A newline or escape in a label would reach operators' terminals and log lines verbatim.
                throw ControllerException.Invalid($"{field}: value of '{key}' contains a control character (newline, tab, escape...).");
            }
        }
    }

    public static void PositiveSize(string field, ulong sizeBytes)
    {
        if (sizeBytes == 0)
        {
            throw ControllerException.Invalid($"{field} must be greater than 0.");
        }

        if (sizeBytes > (1UL << 60))
        {
            throw ControllerException.Invalid($"{field} {sizeBytes} is beyond any LU (1 EiB).");
        }
    }

    public static ulong RoundUp(ulong sizeBytes, ulong extentSizeBytes) =>
        (sizeBytes + extentSizeBytes - 1) / extentSizeBytes * extentSizeBytes;

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "...";
}
