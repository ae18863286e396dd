namespace SharedLvm.Lab.Tests;

/// <summary>
/// A lab scenario. With SHAREDLVM_SKIP_LAB=1 it reports as skipped, not as passed: a run that
/// skipped the lab must not read as "10 passed" in CI's summary.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class LabFactAttribute : FactAttribute
{
    public LabFactAttribute(
        [System.Runtime.CompilerServices.CallerFilePath] string? sourceFilePath = null,
        [System.Runtime.CompilerServices.CallerLineNumber] int sourceLineNumber = -1)
        : base(sourceFilePath, sourceLineNumber)
    {
        if (Lab.SkipRequested)
        {
            Skip = $"{Lab.SkipVariable}=1 skips the SAN lab";
        }
    }
}
