namespace SharedLvm.Os.Processes;

/// <summary>What to run. Arguments are passed as an argv vector, never through a shell.</summary>
public sealed record ProcessSpec(string FileName, IReadOnlyList<string> Arguments)
{
    /// <summary>Every external command has a timeout: a hung SAN path must never hang a daemon.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Extra environment; LC_ALL=C is always set so that output patterns hold.</summary>
    public IReadOnlyDictionary<string, string>? Environment { get; init; }

    public string? StandardInput { get; init; }

    public override string ToString() => FileName + " " + string.Join(' ', Arguments);
}

public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError, TimeSpan Elapsed)
{
    public bool Succeeded => ExitCode == 0;
}

/// <summary>The one seam through which SharedLvm runs external commands (lvm, multipathd, udevadm...).</summary>
public interface IProcessRunner
{
    /// <summary>
    /// Runs to completion. Throws <see cref="ProcessTimeoutException"/> when the timeout passes
    /// (the process tree is killed), <see cref="OperationCanceledException"/> on cancellation (killed
    /// too), <see cref="ProcessStartException"/> when it can't start. A non-zero exit is a result.
    /// </summary>
    Task<ProcessResult> RunAsync(ProcessSpec spec, CancellationToken cancellationToken = default);
}

public class ProcessStartException : Exception
{
    public ProcessStartException()
    {
    }

    public ProcessStartException(string message)
        : base(message)
    {
    }

    public ProcessStartException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The command outlived its timeout and was killed. Its effect is unknown: an lvm command killed
/// mid-way may have committed (field: 31 % of killed lvcreates had), so callers must reconcile.
/// </summary>
public class ProcessTimeoutException : Exception
{
    public ProcessTimeoutException()
    {
    }

    public ProcessTimeoutException(string message)
        : base(message)
    {
    }

    public ProcessTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public string Command { get; init; } = string.Empty;

    public TimeSpan Timeout { get; init; }

    /// <summary>True when the process could not be reaped after the kill (D state on a dead path).</summary>
    public bool Abandoned { get; init; }
}
