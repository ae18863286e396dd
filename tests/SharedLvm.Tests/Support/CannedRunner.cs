using SharedLvm.Os.Processes;

namespace SharedLvm.Tests.Support;

/// <summary>Answers dmsetup by its first argument; with no outputs, every call times out.</summary>
internal sealed class CannedRunner(Dictionary<string, string>? outputs) : IProcessRunner
{
    public Task<ProcessResult> RunAsync(ProcessSpec spec, CancellationToken cancellationToken = default)
    {
        Assert.Equal("dmsetup", spec.FileName);
        return outputs is null
            ? throw new ProcessTimeoutException($"dmsetup did not exit within {spec.Timeout}")
            : Task.FromResult(new ProcessResult(0, outputs[spec.Arguments[0]], string.Empty, TimeSpan.Zero));
    }
}
