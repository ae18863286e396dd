using System.Globalization;
using SharedLvm.Os.Processes;

namespace SharedLvm.Agent.Lvm;

/// <summary>One device-mapper device as dmsetup reports it: its table text and how many hold it open.</summary>
public sealed record DmDeviceState(string Name, string Table, int? OpenCount);

public interface IDmSetup
{
    /// <summary>Every dm device by name; empty when dmsetup does not answer (diagnostics only, never a failure).</summary>
    Task<IReadOnlyDictionary<string, DmDeviceState>> ReadAsync(CancellationToken cancellationToken);
}

/// <summary>
/// `dmsetup table` and `dmsetup info`, with a timeout each: the inventory shows which map (and so which
/// LU) an active LV's extents sit on, and its open count, the first things asked when a detach is
/// refused or an LV looks stale.
/// </summary>
public sealed class DmSetupCli : IDmSetup
{
    private readonly IProcessRunner _runner;
    private readonly TimeSpan _timeout;

    public DmSetupCli(IProcessRunner runner, TimeSpan timeout)
    {
        _runner = runner;
        _timeout = timeout;
    }

    public async Task<IReadOnlyDictionary<string, DmDeviceState>> ReadAsync(CancellationToken cancellationToken)
    {
        var tables = await RunAsync(["table"], cancellationToken).ConfigureAwait(false);
        var info = await RunAsync(["info", "-c", "--noheadings", "--separator", ",", "-o", "name,open"], cancellationToken).ConfigureAwait(false);
        var parsed = DmSetupText.ParseTables(tables ?? string.Empty);
        var open = DmSetupText.ParseOpenCounts(info ?? string.Empty);
        return parsed.Keys.Union(open.Keys, StringComparer.Ordinal).ToDictionary(
            name => name,
            name => new DmDeviceState(name, parsed.GetValueOrDefault(name, string.Empty), open.TryGetValue(name, out var count) ? count : null),
            StringComparer.Ordinal);
    }

    private async Task<string?> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        try
        {
            var result = await _runner.RunAsync(new ProcessSpec("dmsetup", arguments) { Timeout = _timeout }, cancellationToken).ConfigureAwait(false);
            return result.Succeeded ? result.StandardOutput : null;
        }
        catch (Exception e) when (e is ProcessStartException or ProcessTimeoutException)
        {
            return null;
        }
    }
}

/// <summary>Parsers for dmsetup's text output (LC_ALL=C), captured from lab guests in the tests.</summary>
public static class DmSetupText
{
    /// <summary>
    /// `dmsetup table`: one line per target, each prefixed "name: " (a multi-segment LV has several
    /// lines with the same name). "No devices found" when there are none.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ParseTables(string text)
    {
        var tables = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var line in Lines(text))
        {
            var colon = line.IndexOf(": ", StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }

            var name = line[..colon];
            if (!tables.TryGetValue(name, out var targets))
            {
                tables[name] = targets = [];
            }

            targets.Add(line[(colon + 2)..].Trim());
        }

        return tables.ToDictionary(t => t.Key, t => string.Join('\n', t.Value), StringComparer.Ordinal);
    }

    /// <summary>`dmsetup info -c --noheadings --separator , -o name,open`: "name,count" per device.</summary>
    public static IReadOnlyDictionary<string, int> ParseOpenCounts(string text)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in Lines(text))
        {
            var comma = line.LastIndexOf(',');
            if (comma > 0 && int.TryParse(line.AsSpan(comma + 1).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var count))
            {
                counts[line[..comma].Trim()] = count;
            }
        }

        return counts;
    }

    private static IEnumerable<string> Lines(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
