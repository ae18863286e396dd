using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;

namespace SharedLvm.Os.Processes;

/// <summary>
/// Runs every external command: argv vectors, LC_ALL=C, a timeout, the tree killed on timeout or
/// cancellation, and, when the daemon stops, every command still running killed before it exits.
/// </summary>
public sealed class ProcessRunner : IProcessRunner, IDisposable
{
    public const string MeterName = "SharedLvm.Os";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Every external command (lvm by subcommand, multipathd...): how long, and how it ended.</summary>
    private static readonly Histogram<double> Durations = Meter.CreateHistogram(
        "sharedlvm_command_duration_seconds", "s", "External commands by command and outcome (ok, failed, timeout, cancelled).",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] });

    /// <summary>How long to wait for a killed process to be reaped before abandoning it.</summary>
    private static readonly TimeSpan ReapTimeout = TimeSpan.FromSeconds(5);

    private readonly ILogger<ProcessRunner> _logger;

    /// <summary>Children still running, so that stopping the daemon can kill them (see <see cref="Dispose"/>).</summary>
    private readonly ConcurrentDictionary<int, Process> _running = new();

    private volatile bool _disposed;

    public ProcessRunner(ILogger<ProcessRunner> logger)
    {
        _logger = logger;
    }

    public async Task<ProcessResult> RunAsync(ProcessSpec spec, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var startInfo = new ProcessStartInfo(spec.FileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in spec.Arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        startInfo.Environment["LC_ALL"] = "C";
        startInfo.Environment["LANG"] = "C";
        foreach (var (key, value) in spec.Environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[key] = value;
        }

        using var process = new Process { StartInfo = startInfo };
        var started = Stopwatch.GetTimestamp();
        try
        {
            process.Start();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new ProcessStartException($"Could not start {spec.FileName}: {e.Message}", e);
        }

        OsLog.Started(_logger, spec.FileName, process.Id, spec.ToString());
        _running[process.Id] = process;
        try
        {
            return await WaitAsync(process, spec, started, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _running.TryRemove(process.Id, out _);
        }
    }

    /// <summary>
    /// Kills every command still running, synchronously, before the daemon exits. .NET kills a tree
    /// by SIGSTOPping each process, then SIGKILLing it: a daemon that exited between the two (the host
    /// shutting down while a cancellation's kill ran on the thread pool) left an `lvm fullreport`
    /// stopped for good, holding LVM's global lock, and every later lvm command on the host waited on
    /// it (found by the main suite: the agent stopped by SIGTERM mid-inventory).
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (var process in _running.Values)
        {
            try
            {
                OsLog.KilledAtShutdown(_logger, process.StartInfo.FileName, process.Id);
                process.Kill(entireProcessTree: true);
                process.WaitForExit(ReapTimeout);
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // Already exited, or already reaped by its own timeout path.
            }
        }
    }

    private async Task<ProcessResult> WaitAsync(Process process, ProcessSpec spec, long started, CancellationToken cancellationToken)
    {

        // Drain both pipes concurrently: a full stderr pipe would otherwise block the child forever.
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            if (spec.StandardInput is not null)
            {
                await process.StandardInput.WriteAsync(spec.StandardInput.AsMemory(), cancellationToken).ConfigureAwait(false);
            }

            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The child exited without reading its input; its exit code tells the rest.
        }

        using var timeoutCts = new CancellationTokenSource(spec.Timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutCts.Token);
        try
        {
            await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
            var output = await stdout.ConfigureAwait(false);
            var error = await stderr.ConfigureAwait(false);
            var elapsed = Stopwatch.GetElapsedTime(started);
            OsLog.Finished(_logger, spec.FileName, process.Id, process.ExitCode, elapsed.TotalMilliseconds);
            Observe(spec, process.ExitCode == 0 ? "ok" : "failed", elapsed);
            return new ProcessResult(process.ExitCode, output, error, elapsed);
        }
        catch (OperationCanceledException)
        {
            var reaped = await KillTreeAsync(process).ConfigureAwait(false);
            Observe(spec, cancellationToken.IsCancellationRequested ? "cancelled" : "timeout", Stopwatch.GetElapsedTime(started));
            if (cancellationToken.IsCancellationRequested)
            {
                OsLog.Cancelled(_logger, spec.FileName, process.Id);
                throw;
            }

            OsLog.TimedOut(_logger, spec.FileName, process.Id, spec.Timeout.TotalSeconds, reaped);
            throw new ProcessTimeoutException(
                $"{spec.FileName} did not finish within {spec.Timeout.TotalSeconds:0.###} s and was killed{(reaped ? string.Empty : " (not reaped: stuck in the kernel?)")}.")
            {
                Command = spec.ToString(),
                Timeout = spec.Timeout,
                Abandoned = !reaped,
            };
        }
    }

    /// <summary>The command label: the program, plus the subcommand for lvm and multipathd (a bounded set).</summary>
    private static void Observe(ProcessSpec spec, string outcome, TimeSpan elapsed)
    {
        var program = Path.GetFileName(spec.FileName);
        var command = program is "lvm" or "multipathd" && spec.Arguments.Count > 0 ? program + " " + spec.Arguments[0] : program;
        Durations.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("command", command), new KeyValuePair<string, object?>("outcome", outcome));
    }

    private static async Task<bool> KillTreeAsync(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            return true; // already exited
        }

        // A process in uninterruptible sleep (I/O on a LU with queue_if_no_path) ignores SIGKILL
        // until the I/O completes: never wait for it unboundedly.
        using var reap = new CancellationTokenSource(ReapTimeout);
        try
        {
            await process.WaitForExitAsync(reap.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
