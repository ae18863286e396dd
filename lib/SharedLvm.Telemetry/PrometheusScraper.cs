using System.Diagnostics.Metrics;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace SharedLvm.Telemetry;

/// <summary>
/// A MeterProvider over the given meters whose only reader is collected on demand: each scrape runs
/// the observable callbacks and renders the exposition text. (The SDK reserves true pull mode for
/// its own Prometheus exporter; a push-mode exporter that nothing pushes on a timer is equivalent.)
/// </summary>
/// <remarks>
/// Meters are matched by name process-wide, so a host's own meters carry its <see cref="MetricScope"/>
/// and instruments of another host's scope are dropped: two hosts in one process (the in-process
/// tests run a controller and two agents) each expose only their own state. Process-wide meters
/// (no scope: gRPC calls, external commands) appear in every host's output.
/// </remarks>
public sealed class PrometheusScraper : IDisposable
{
    private readonly TextExporter _exporter;
    private readonly BaseExportingMetricReader _reader;
    private readonly MeterProvider _provider;
    private readonly object _gate = new();

    public PrometheusScraper(MetricScope scope, IReadOnlyList<string> meters)
    {
        _exporter = new TextExporter(scope.ConstantLabels);
        _reader = new BaseExportingMetricReader(_exporter);
        var builder = Sdk.CreateMeterProviderBuilder();
        foreach (var meter in meters)
        {
            builder.AddMeter(meter);
        }

        _provider = builder
            .AddView(instrument => instrument.Meter.Scope is MetricScope other && !ReferenceEquals(other, scope) ? MetricStreamConfiguration.Drop : null)
            .AddReader(_reader)
            .Build();
    }

    public string Scrape()
    {
        lock (_gate)
        {
            _exporter.Text = string.Empty;
            _reader.Collect(10_000);
            return _exporter.Text;
        }
    }

    public void Dispose() => _provider.Dispose();

    private sealed class TextExporter(IReadOnlyList<KeyValuePair<string, string>> constantLabels) : BaseExporter<Metric>
    {
        public string Text { get; set; } = string.Empty;

        public override ExportResult Export(in Batch<Metric> batch)
        {
            var text = new StringBuilder();
            foreach (var metric in batch)
            {
                PrometheusText.Write(text, metric, constantLabels);
            }

            Text = text.ToString();
            return ExportResult.Success;
        }
    }
}

/// <summary>
/// Marks the meters of one host (a controller or an agent) and the labels every one of its series
/// carries (the agent's <c>node</c>, as topolvm does).
/// </summary>
public sealed class MetricScope
{
    public MetricScope(params KeyValuePair<string, string>[] constantLabels)
    {
        ConstantLabels = constantLabels;
    }

    public IReadOnlyList<KeyValuePair<string, string>> ConstantLabels { get; }

    /// <summary>A meter that only this scope's scraper reads.</summary>
    public Meter CreateMeter(string name) => new(new MeterOptions(name) { Scope = this });
}
