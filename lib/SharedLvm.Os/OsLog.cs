using Microsoft.Extensions.Logging;

namespace SharedLvm.Os;

/// <summary>Every log message of the OS boundary (external commands): stable event ids 2xxx, each used once.</summary>
internal static partial class OsLog
{
    [LoggerMessage(2001, LogLevel.Debug, "Started {Program} pid {Pid}: {CommandLine}")]
    public static partial void Started(ILogger logger, string program, int pid, string commandLine);

    [LoggerMessage(2002, LogLevel.Debug, "{Program} pid {Pid} exited {ExitCode} after {ElapsedMs} ms")]
    public static partial void Finished(ILogger logger, string program, int pid, int exitCode, double elapsedMs);

    [LoggerMessage(2003, LogLevel.Warning, "{Program} pid {Pid} timed out after {TimeoutSeconds} s and was killed (reaped: {Reaped})")]
    public static partial void TimedOut(ILogger logger, string program, int pid, double timeoutSeconds, bool reaped);

    [LoggerMessage(2004, LogLevel.Debug, "{Program} pid {Pid} was cancelled and killed")]
    public static partial void Cancelled(ILogger logger, string program, int pid);

    [LoggerMessage(2005, LogLevel.Warning, "{Program} pid {Pid} was still running when the daemon stopped and was killed")]
    public static partial void KilledAtShutdown(ILogger logger, string program, int pid);
}
