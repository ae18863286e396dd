using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Telemetry;

/// <summary>The alert rules, the dashboard and the metric catalogue: linted, unit-tested, consistent with each other.</summary>
public sealed partial class OperatorAssetsTests
{
    private static readonly string Alerts = Repo.PathOf("deploy", "prometheus", "sharedlvm-alerts.yml");

    [GeneratedRegex(@"\bsharedlvm_[a-z_]+", RegexOptions.CultureInvariant)]
    private static partial Regex MetricName();

    /// <summary>Metric families the catalogue documents (histograms without their _bucket/_sum/_count series).</summary>
    public static IReadOnlySet<string> Catalogue() =>
        File.ReadAllLines(Repo.PathOf("deploy", "METRICS.md"))
            .Where(l => l.StartsWith("| `sharedlvm_", StringComparison.Ordinal))
            .Select(l => l.Split('`')[1])
            .ToHashSet(StringComparer.Ordinal);

    public static string Family(string series) => Regex.Replace(series, "_(bucket|sum|count)$", string.Empty);

    [Fact]
    public void Promtool_accepts_the_alert_rules_and_their_unit_tests_pass()
    {
        Requirement.SkipIfRequested(LiveMetricsTests.SkipVariable, "promtool");
        Assert.Equal((0, "SUCCESS: 21 rules found"), Promtool("check", "rules", Alerts));
        Assert.Equal(0, Promtool("test", "rules", Repo.PathOf("deploy", "prometheus", "sharedlvm-alerts.test.yml")).Code);
    }

    [Fact]
    public void Every_metric_the_alerts_and_the_dashboard_use_is_in_the_catalogue()
    {
        var catalogue = Catalogue();
        var dashboard = JsonDocument.Parse(File.ReadAllText(Repo.PathOf("deploy", "grafana", "sharedlvm-dashboard.json"))).RootElement;
        var expressions = dashboard.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("expr").GetString()!))
            .ToList();
        Assert.True(expressions.Count >= 20, "the dashboard has a panel for each layer");
        Assert.All(dashboard.GetProperty("panels").EnumerateArray(), p => Assert.Equal("${datasource}", p.GetProperty("datasource").GetProperty("uid").GetString()));

        var used = expressions.Append(File.ReadAllText(Alerts))
            .SelectMany(e => MetricName().Matches(e).Select(m => Family(m.Value)))
            .ToHashSet(StringComparer.Ordinal);
        Assert.Empty(used.Except(catalogue));
        // And the other way: the dashboard shows every layer that can fail.
        Assert.Contains("sharedlvm_lu_paths", used);
        Assert.Contains("sharedlvm_hba_port_up", used);
        Assert.Contains("sharedlvm_pool_metadata_free_bytes", used);
        Assert.Contains("sharedlvm_double_activations_total", used);
    }

    private static (int Code, string Output) Promtool(params string[] arguments)
    {
        var info = new ProcessStartInfo("promtool") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        var summary = output.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("SUCCESS", StringComparison.Ordinal) || l.StartsWith("FAILED", StringComparison.Ordinal));
        return (process.ExitCode, summary ?? output);
    }
}
