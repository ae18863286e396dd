using System.Diagnostics.Metrics;

namespace SharedLvm.Telemetry;

/// <summary>
/// Marks the meters of one host (a controller or an agent) and the labels every one of its series
/// carries (the agent's <c>node</c>, as topolvm does). Meters are matched by name process-wide, so
/// two hosts in one process (the in-process tests run a controller and two agents) would otherwise
/// each expose the other's state; instruments of another host's scope are dropped from a host's
/// /metrics. Process-wide meters (no scope: gRPC calls, external commands) appear in every host's.
/// </summary>
public sealed class MetricScope
{
    public MetricScope(params KeyValuePair<string, string>[] constantLabels)
    {
        ConstantLabels = constantLabels;
    }

    public IReadOnlyList<KeyValuePair<string, string>> ConstantLabels { get; }

    /// <summary>A meter that only this scope's /metrics shows.</summary>
    public Meter CreateMeter(string name) => new(new MeterOptions(name) { Scope = this });
}
