using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using SharedLvm.Os.Processes;

namespace SharedLvm.Tests.Os;

public class ProcessRunnerTests
{
    private readonly ProcessRunner _runner = new(NullLogger<ProcessRunner>.Instance);

    [Fact]
    public async Task Captures_both_streams_exit_code_and_forces_the_C_locale()
    {
        var result = await _runner.RunAsync(new ProcessSpec("/bin/sh", ["-c", "echo out; echo \"$LC_ALL\" >&2; exit 3"]));
        Assert.Equal(3, result.ExitCode);
        Assert.Equal("out\n", result.StandardOutput);
        Assert.Equal("C\n", result.StandardError);
    }

    [Fact]
    public async Task Arguments_are_an_argv_vector_not_shell_text()
    {
        var result = await _runner.RunAsync(new ProcessSpec("/bin/echo", ["a; rm -rf /tmp/x", "$(id)"]));
        Assert.Equal("a; rm -rf /tmp/x $(id)\n", result.StandardOutput);
    }

    [Fact]
    public async Task Timeout_kills_the_whole_process_tree()
    {
        var marker = Path.Combine(Path.GetTempPath(), "slvm-child-" + Guid.NewGuid().ToString("N"));
        var stopwatch = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<ProcessTimeoutException>(() => _runner.RunAsync(
            new ProcessSpec("/bin/sh", ["-c", $"sleep 30 & echo $! > {marker}; wait"]) { Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10));
        Assert.False(e.Abandoned);
        var childPid = int.Parse(File.ReadAllText(marker).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        File.Delete(marker);
        // SIGKILL is delivered asynchronously: give the kernel a moment (under load) before calling it a survivor.
        await SharedLvm.Tests.Support.Eventually.TrueAsync(
            () => !Directory.Exists($"/proc/{childPid}") || File.ReadAllText($"/proc/{childPid}/stat").Contains(") Z", StringComparison.Ordinal),
            "the grandchild sleep died with the tree");
    }

    [Fact]
    public async Task Cancellation_kills_and_surfaces_as_cancellation()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            _runner.RunAsync(new ProcessSpec("/bin/sleep", ["30"]), cts.Token));
    }

    [Fact]
    public async Task Disposing_kills_what_still_runs_and_leaves_nothing_stopped()
    {
        // What a daemon's shutdown does: the container disposes the runner while a command runs.
        var runner = new ProcessRunner(NullLogger<ProcessRunner>.Instance);
        var marker = Path.Combine(Path.GetTempPath(), "slvm-child-" + Guid.NewGuid().ToString("N"));
        var running = runner.RunAsync(new ProcessSpec("/bin/sh", ["-c", $"echo $$ > {marker}; exec sleep 30"]));
        await SharedLvm.Tests.Support.Eventually.TrueAsync(() => File.Exists(marker) && File.ReadAllText(marker).EndsWith('\n'), "the command started");
        var pid = File.ReadAllText(marker).Trim();
        File.Delete(marker);

        runner.Dispose();

        Assert.False(Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z", StringComparison.Ordinal), "the child survived the runner");
        Assert.NotEqual(0, (await running).ExitCode);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => runner.RunAsync(new ProcessSpec("/bin/true", [])));
    }

    [Fact]
    public async Task Missing_program_is_a_typed_error()
    {
        await Assert.ThrowsAsync<ProcessStartException>(() =>
            _runner.RunAsync(new ProcessSpec("/nonexistent/lvm", [])));
    }

    [Fact]
    public async Task Large_stderr_does_not_deadlock()
    {
        var result = await _runner.RunAsync(new ProcessSpec("/bin/sh", ["-c", "head -c 1000000 /dev/zero | tr '\\0' x >&2; echo done"]));
        Assert.Equal("done\n", result.StandardOutput);
        Assert.Equal(1_000_000, result.StandardError.Length);
    }
}
