using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SharedLvm.Contracts.V1;
using SharedLvm.Tests.Support;

namespace SharedLvm.Tests.Telemetry;

/// <summary>
/// /metrics of a real controller (pool on a loop-device VG) and a real agent (fixture node with one
/// failed path), checked by Debian's promtool and scraped by Debian's real Prometheus server.
/// </summary>
public sealed class LiveMetricsTests : IAsyncLifetime
{
    public const string SkipVariable = "SHAREDLVM_SKIP_PROMETHEUS";
    private const string Wwid = "35000c500a0000001";
    private readonly int _controllerMetrics = FreePort.Next();
    private readonly int _agentMetrics = FreePort.Next();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private Cluster _cluster = null!;

    public async ValueTask InitializeAsync()
    {
        Requirement.SkipIfRequested(SkipVariable, "promtool and a real Prometheus");
        Requirement.Demand(LoopDevice.Run("sh", "-c", "command -v promtool && command -v prometheus").Code == 0, "prometheus (promtool) is not installed", SkipVariable);
        _cluster = await Cluster.StartAsync(new ClusterOptions
        {
            PoolSizeBytes = 512L * 1024 * 1024,
            PoolMetadataSizeBytes = 4 * 1024 * 1024,
            ControllerArgs = ["--metrics-listen", $"127.0.0.1:{_controllerMetrics}"],
        });
        foreach (var name in (string[])["vm-1", "vm-2", "vm-3"])
        {
            await _cluster.CreateVolumeAsync(name, 8 * 1024 * 1024);
        }

        await _cluster.AddAgentAsync("node-m", "failed-path", "--metrics-listen", $"127.0.0.1:{_agentMetrics}");
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (_cluster is not null)
        {
            await _cluster.DisposeAsync();
        }
    }

    [Fact]
    public async Task Both_daemons_expose_what_can_fail_and_promtool_accepts_it()
    {
        var controller = await ScrapeAsync(_controllerMetrics);
        Assert.Equal(3, Exposition.Value(controller, "sharedlvm_pool_volumes", ("pool", _cluster.Pool), ("state", "available")));
        Assert.Equal(3, Exposition.Value(controller, "sharedlvm_volume_operations_total", ("operation", "create"), ("result", "OK")));
        Assert.True(Exposition.Has(controller, "sharedlvm_grpc_server_calls_total", ("code", "OK"), ("method", "/sharedlvm.v1.Controller/CreateVolume")));
        Assert.True(Exposition.Has(controller, "sharedlvm_command_duration_seconds_bucket", ("command", "lvm lvcreate"), ("outcome", "ok")));
        Assert.True(Exposition.Value(controller, "sharedlvm_pool_metadata_free_bytes", ("pool", _cluster.Pool)) > 10);
        Assert.Contains("sharedlvm_controller_epoch ", controller, StringComparison.Ordinal);
        // The writer's batch metrics under the names the catalogue and SharedLvmWriteBatchesFailing use.
        Assert.True(Exposition.Value(controller, "sharedlvm_pool_write_batch_size_count", ("pool", _cluster.Pool), ("kind", "single")) >= 3);
        Assert.True(Exposition.Has(controller, "sharedlvm_pool_write_commit_duration_seconds_bucket", ("pool", _cluster.Pool), ("kind", "single")));
        Assert.Equal(0, Exposition.Value(controller, "sharedlvm_pool_write_batch_failures_total", ("pool", _cluster.Pool), ("reason", "lvm_failed")));
        PromtoolAccepts(controller);

        await Eventually.TrueAsync(() => Exposition.Value(ScrapeAsync(_agentMetrics).GetAwaiter().GetResult(), "sharedlvm_agent_controller_connected", ("node", "node-m")) == 1,
            "the agent registered");
        var agent = await ScrapeAsync(_agentMetrics);
        Assert.Equal(1, Exposition.Value(agent, "sharedlvm_lu_paths", ("node", "node-m"), ("state", "failed"), ("wwid", Wwid)));
        Assert.Equal(1, Exposition.Value(agent, "sharedlvm_lu_paths", ("node", "node-m"), ("state", "active"), ("wwid", Wwid)));
        Assert.Equal(1, Exposition.Value(agent, "sharedlvm_lu_map_present", ("node", "node-m"), ("wwid", Wwid)));
        Assert.Equal(1, Exposition.Value(agent, "sharedlvm_health_findings", ("node", "node-m"), ("code", "path_failed"), ("layer", "multipath"), ("severity", "degraded")));
        Assert.DoesNotContain("sharedlvm_pool_volumes", agent, StringComparison.Ordinal);
        PromtoolAccepts(agent);

        // The catalogue documents every family either daemon exposes.
        var exposed = (controller + agent).Split('\n').Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]);
        Assert.Empty(exposed.Except(OperatorAssetsTests.Catalogue()));

        // The controller counts the node, and the agent's series are not in the controller's output.
        var after = await ScrapeAsync(_controllerMetrics);
        Assert.Equal(1, Exposition.Value(after, "sharedlvm_nodes", ("state", "ready")));
        Assert.DoesNotContain("sharedlvm_lu_paths", after, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_real_prometheus_scrapes_both_and_reads_the_same_numbers()
    {
        var port = FreePort.Next();
        var config = Path.Combine(_cluster.StateDirectory, "prometheus.yml");
        await File.WriteAllTextAsync(config, $$"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: ["{{Repo.PathOf("deploy", "prometheus", "sharedlvm-alerts.yml")}}"]
            scrape_configs:
              - job_name: sharedlvm-controller
                static_configs: [{ targets: ["127.0.0.1:{{_controllerMetrics}}"] }]
              - job_name: sharedlvm-agent
                static_configs: [{ targets: ["127.0.0.1:{{_agentMetrics}}"] }]
            """);
        var info = new ProcessStartInfo("prometheus") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in (string[])[$"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_cluster.StateDirectory, "tsdb")}", $"--web.listen-address=127.0.0.1:{port}"])
        {
            info.ArgumentList.Add(argument);
        }

        using var prometheus = Process.Start(info)!;
        var log = prometheus.StandardError.ReadToEndAsync();
        try
        {
            await Eventually.TrueAsync(() => Query(port, $"sum(sharedlvm_pool_volumes{{pool=\"{_cluster.Pool}\"}})") == 3, "Prometheus read 3 volumes", TimeSpan.FromSeconds(60));
            await Eventually.TrueAsync(() => Query(port, $"sharedlvm_lu_paths{{job=\"sharedlvm-agent\",node=\"node-m\",wwid=\"{Wwid}\",state=\"failed\"}}") == 1,
                "Prometheus read the failed path", TimeSpan.FromSeconds(30));
            Assert.Equal(2, Query(port, "sum(up{job=~\"sharedlvm-.*\"})"));
            // The alert rules load and the path alert fires on these very series.
            await Eventually.TrueAsync(() => Query(port, $"count(ALERTS{{alertname=\"SharedLvmPathDown\",wwid=\"{Wwid}\"}})") == 1,
                "the SharedLvmPathDown alert is pending or firing", TimeSpan.FromSeconds(30));
        }
        finally
        {
            prometheus.Kill();
            await prometheus.WaitForExitAsync();
        }

        Assert.DoesNotContain("level=error", await log, StringComparison.Ordinal);
    }

    private Task<string> ScrapeAsync(int port) => _http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/metrics"));

    /// <summary>The value of an instant query, or NaN when Prometheus has no sample yet.</summary>
    private double Query(int port, string query)
    {
        try
        {
            var json = _http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/api/v1/query?query={Uri.EscapeDataString(query)}")).GetAwaiter().GetResult();
            using var document = JsonDocument.Parse(json);
            var result = document.RootElement.GetProperty("data").GetProperty("result");
            return result.GetArrayLength() == 0 ? double.NaN
                : double.Parse(result[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
        }
        catch (HttpRequestException)
        {
            return double.NaN;
        }
    }

    private static void PromtoolAccepts(string exposition)
    {
        var info = new ProcessStartInfo("promtool", "check metrics") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var promtool = Process.Start(info)!;
        promtool.StandardInput.Write(exposition);
        promtool.StandardInput.Close();
        var output = promtool.StandardOutput.ReadToEnd() + promtool.StandardError.ReadToEnd();
        promtool.WaitForExit();
        Assert.True(promtool.ExitCode == 0 && output.Trim().Length == 0, "promtool check metrics: " + output);
    }
}
