using SharedLvm.Os.Processes;

namespace SharedLvm.Tests.Support;

/// <summary>
/// Records every command and answers from a script: the first rule whose predicate matches the
/// argv (program + arguments, space-joined) gives the result. No rule: exit 0, empty output.
/// </summary>
internal sealed class ScriptedRunner : IProcessRunner
{
    private readonly List<(Func<string, bool> Matches, Func<ProcessResult> Result)> _rules = [];

    public List<ProcessSpec> Calls { get; } = [];

    public IEnumerable<string> CommandLines => Calls.Select(c => c.ToString());

    public ScriptedRunner On(string contains, int exitCode, string stdout = "", string stderr = "")
    {
        _rules.Add((line => line.Contains(contains, StringComparison.Ordinal), () => new ProcessResult(exitCode, stdout, stderr, TimeSpan.Zero)));
        return this;
    }

    public ScriptedRunner OnTimeout(string contains)
    {
        _rules.Add((line => line.Contains(contains, StringComparison.Ordinal), () => throw new ProcessTimeoutException($"{contains} timed out")));
        return this;
    }

    public Task<ProcessResult> RunAsync(ProcessSpec spec, CancellationToken cancellationToken = default)
    {
        lock (Calls)
        {
            Calls.Add(spec);
        }

        var line = spec.ToString();
        foreach (var (matches, result) in _rules)
        {
            if (matches(line))
            {
                return Task.FromResult(result());
            }
        }

        return Task.FromResult(new ProcessResult(0, string.Empty, string.Empty, TimeSpan.Zero));
    }
}
