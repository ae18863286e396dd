using System.Diagnostics.Metrics;
using SharedLvm.Telemetry;

namespace SharedLvm.Tests.Telemetry;

/// <summary>The exposition text is a public API: its exact shape is pinned here (as opentelemetry-dotnet does).</summary>
public sealed class PrometheusTextTests
{
    [Fact]
    public void Counters_gauges_and_histograms_render_as_text_format_0_0_4()
    {
        var scope = new MetricScope(new KeyValuePair<string, string>("node", "node-a"));
        var name = "SharedLvm.Test." + Guid.NewGuid().ToString("N");
        using var meter = scope.CreateMeter(name);
        using var scraper = new PrometheusScraper(scope, [name]);
        var calls = meter.CreateCounter<long>("test_calls", "{call}", "Calls by code.");
        var latency = meter.CreateHistogram("test_latency_seconds", "s", "Latency.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1] });
        meter.CreateObservableGauge("test_paths", () => new Measurement<int>(2, new KeyValuePair<string, object?>("wwid", "3600a\"x\\y\nz")), "{path}", "Paths;\nper LU.");

        calls.Add(3, new KeyValuePair<string, object?>("code", "OK"));
        latency.Record(0.05);
        latency.Record(0.5);
        latency.Record(5);

        Assert.Equal(
            """
            # HELP test_calls_total Calls by code.
            # TYPE test_calls_total counter
            test_calls_total{node="node-a",code="OK"} 3
            # HELP test_latency_seconds Latency.
            # TYPE test_latency_seconds histogram
            test_latency_seconds_bucket{node="node-a",le="0.1"} 1
            test_latency_seconds_bucket{node="node-a",le="1"} 2
            test_latency_seconds_bucket{node="node-a",le="+Inf"} 3
            test_latency_seconds_sum{node="node-a"} 5.55
            test_latency_seconds_count{node="node-a"} 3
            # HELP test_paths Paths;\nper LU.
            # TYPE test_paths gauge
            test_paths{node="node-a",wwid="3600a\"x\\y\nz"} 2

            """.Replace("\r", string.Empty, StringComparison.Ordinal),
            scraper.Scrape());
    }

    [Fact]
    public void A_scraper_sees_its_own_scope_and_not_another_hosts_in_the_same_process()
    {
        var name = "SharedLvm.Test." + Guid.NewGuid().ToString("N");
        var mine = new MetricScope();
        var theirs = new MetricScope();
        using var myMeter = mine.CreateMeter(name);
        using var theirMeter = theirs.CreateMeter(name);
        using var scraper = new PrometheusScraper(mine, [name]);
        myMeter.CreateObservableGauge("test_mine", () => 1);
        theirMeter.CreateObservableGauge("test_theirs", () => 1);

        var text = scraper.Scrape();
        Assert.Contains("test_mine 1", text, StringComparison.Ordinal);
        Assert.DoesNotContain("test_theirs", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sharedlvm.grpc-calls", "sharedlvm_grpc_calls")]
    [InlineData("9lives", "_9lives")]
    public void Names_are_sanitised_to_the_prometheus_character_set(string name, string expected) =>
        Assert.Equal(expected, PrometheusText.Sanitize(name));
}
