using System.Text.Json;
using System.Text.Json.Serialization;
using SharedLvm.Os.Processes;

namespace SharedLvm.Agent.Discovery;

/// <summary>multipathd's own view of one map (`multipathd show maps json`).</summary>
public sealed record MultipathdMap(string Name, string Wwid, string DmDevice, string Queueing, string DmState, string Features, IReadOnlyList<MultipathdPath> Paths)
{
    /// <summary>
    /// Queueing in effect: "on" (queue_if_no_path forever), "N chk"/"N sec" (no_path_retry counting).
    /// With every path down, I/O then blocks instead of failing: processes hang in D state.
    /// </summary>
    public bool IsQueueing => Queueing is not ("off" or "-" or "") || Features.Contains("queue_if_no_path", StringComparison.Ordinal);
}

public sealed record MultipathdPath(string Device, string DmState, string DeviceState, string CheckerState);

public interface IMultipathd
{
    /// <summary>Null when multipathd does not answer (not running, or its socket hangs).</summary>
    Task<IReadOnlyList<MultipathdMap>?> ShowMapsAsync(CancellationToken cancellationToken);
}

/// <summary>Asks multipathd through its CLI, always with a timeout (a wedged multipathd must not wedge the agent).</summary>
public sealed class MultipathdCli : IMultipathd
{
    private readonly IProcessRunner _runner;
    private readonly TimeSpan _timeout;

    public MultipathdCli(IProcessRunner runner, TimeSpan timeout)
    {
        _runner = runner;
        _timeout = timeout;
    }

    public async Task<IReadOnlyList<MultipathdMap>?> ShowMapsAsync(CancellationToken cancellationToken)
    {
        try
        {
            var result = await _runner.RunAsync(new ProcessSpec("multipathd", ["show", "maps", "json"]) { Timeout = _timeout }, cancellationToken).ConfigureAwait(false);
            return result.Succeeded && result.StandardOutput.TrimStart().StartsWith('{') ? MultipathdJson.Parse(result.StandardOutput) : null;
        }
        catch (Exception e) when (e is ProcessStartException or ProcessTimeoutException or JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// Parses the JSON multipathd prints (libmultipath/print.c PRINT_JSON_*: a "maps" array, each with
/// "path_groups", each with "paths"), into raw rows and then domain records.
/// </summary>
public static class MultipathdJson
{
    public static IReadOnlyList<MultipathdMap> Parse(string json)
    {
        var document = JsonSerializer.Deserialize(json, MultipathdJsonContext.Default.RawMultipathdDocument)
            ?? throw new JsonException("multipathd printed no JSON document.");
        return document.Maps.Select(m => new MultipathdMap(
            m.Name,
            m.Uuid,
            m.Sysfs,
            m.Queueing,
            m.DmState,
            m.Features,
            m.PathGroups.SelectMany(g => g.Paths).Select(p => new MultipathdPath(p.Dev, p.DmState, p.DevState, p.CheckerState)).ToArray())).ToArray();
    }
}

internal sealed class RawMultipathdDocument
{
    [JsonPropertyName("maps")] public List<RawMultipathdMap> Maps { get; set; } = [];
}

internal sealed class RawMultipathdMap
{
    [JsonPropertyName("name")] public string Name { get; set; } = string.Empty;
    [JsonPropertyName("uuid")] public string Uuid { get; set; } = string.Empty;
    [JsonPropertyName("sysfs")] public string Sysfs { get; set; } = string.Empty;
    [JsonPropertyName("queueing")] public string Queueing { get; set; } = string.Empty;
    [JsonPropertyName("dm_st")] public string DmState { get; set; } = string.Empty;
    [JsonPropertyName("features")] public string Features { get; set; } = string.Empty;
    [JsonPropertyName("path_groups")] public List<RawMultipathdGroup> PathGroups { get; set; } = [];
}

internal sealed class RawMultipathdGroup
{
    [JsonPropertyName("dm_st")] public string DmState { get; set; } = string.Empty;
    [JsonPropertyName("paths")] public List<RawMultipathdPath> Paths { get; set; } = [];
}

internal sealed class RawMultipathdPath
{
    [JsonPropertyName("dev")] public string Dev { get; set; } = string.Empty;
    [JsonPropertyName("dm_st")] public string DmState { get; set; } = string.Empty;
    [JsonPropertyName("dev_st")] public string DevState { get; set; } = string.Empty;
    [JsonPropertyName("chk_st")] public string CheckerState { get; set; } = string.Empty;
}

[JsonSerializable(typeof(RawMultipathdDocument))]
internal sealed partial class MultipathdJsonContext : JsonSerializerContext
{
}
