using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace SharedLvm.Tests.Support;

/// <summary>One log entry of an in-process host.</summary>
internal sealed record LogRecord(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception)
{
    public override string ToString() => $"{Level} {Category}[{EventId.Id}] {Message}{(Exception is null ? string.Empty : " " + Exception.GetType().Name + ": " + Exception.Message)}";
}

/// <summary>
/// The logs of the in-process hosts of a test, kept instead of printed. An Error (or Critical)
/// entry the test did not say it expects fails the test when its hosts stop, as grpc-dotnet's
/// VerifyNoErrorsScope does: a passing test that logged an error hid a bug.
/// </summary>
internal sealed class LogSink : ILoggerProvider
{
    private readonly ConcurrentQueue<LogRecord> _records = new();
    private readonly ConcurrentBag<Func<LogRecord, bool>> _expected = [];

    public IReadOnlyList<LogRecord> Records => [.. _records];

    /// <summary>Entries at Error or above that no expectation covers.</summary>
    public IReadOnlyList<LogRecord> UnexpectedErrors =>
        _records.Where(r => r.Level >= LogLevel.Error && !_expected.Any(e => e(r))).ToArray();

    /// <summary>The test provokes this: an Error entry with this event id is part of the story.</summary>
    public LogSink Expect(int eventId) => Expect(r => r.EventId.Id == eventId);

    public LogSink Expect(Func<LogRecord, bool> predicate)
    {
        _expected.Add(predicate);
        return this;
    }

    public void VerifyNoErrors()
    {
        var unexpected = UnexpectedErrors;
        if (unexpected.Count > 0)
        {
            Assert.Fail("unexpected error logs:\n" + string.Join('\n', unexpected));
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(LogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                sink._records.Enqueue(new LogRecord(category, logLevel, eventId, formatter(state, exception), exception));
            }
        }
    }
}
