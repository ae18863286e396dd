using System.Globalization;
using System.Text.RegularExpressions;

namespace SharedLvm.Tests.Support;

/// <summary>
/// Samples of a Prometheus text exposition, looked up by name and label set: the order labels
/// appear in is the exporter's business, not the API's.
/// </summary>
internal static partial class Exposition
{
    [GeneratedRegex("^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\\{(?<labels>.*)\\})? (?<value>\\S+)$")]
    private static partial Regex SampleLine();

    [GeneratedRegex("(?<key>[a-zA-Z_][a-zA-Z0-9_]*)=\"(?<value>(\\\\.|[^\"\\\\])*)\"")]
    private static partial Regex Label();

    /// <summary>The value of the sample with exactly these labels, or null when there is none.</summary>
    public static double? Value(string text, string name, params (string Key, string Value)[] labels)
    {
        var wanted = labels.ToDictionary(l => l.Key, l => l.Value, StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            var match = SampleLine().Match(line);
            if (!match.Success || match.Groups["name"].Value != name)
            {
                continue;
            }

            var found = Label().Matches(match.Groups["labels"].Value)
                .ToDictionary(m => m.Groups["key"].Value, m => Regex.Unescape(m.Groups["value"].Value), StringComparer.Ordinal);
            if (found.Count == wanted.Count && wanted.All(w => found.TryGetValue(w.Key, out var v) && v == w.Value))
            {
                return double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    /// <summary>True when some sample of <paramref name="name"/> carries all of these labels (and maybe others).</summary>
    public static bool Has(string text, string name, params (string Key, string Value)[] labels) =>
        text.Split('\n').Select(l => SampleLine().Match(l)).Any(m => m.Success && m.Groups["name"].Value == name
            && labels.All(w => Label().Matches(m.Groups["labels"].Value).Any(l => l.Groups["key"].Value == w.Key && Regex.Unescape(l.Groups["value"].Value) == w.Value)));
}
