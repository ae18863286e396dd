namespace SharedLvm.Tests.Support;

/// <summary>Locates files of the repository from the test's output directory.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SharedLvm.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("SharedLvm.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>
/// Tests that need something from the machine (root, python3-grpcio, lvm2) fail when it is missing
/// rather than skip, so CI can't pass by silently skipping. Only an explicit environment variable
/// (named in the reason) skips them, and then they report Skipped, never Passed.
/// </summary>
internal static class Requirement
{
    /// <summary>Reports the test Skipped when <paramref name="variable"/>=1 asks for it.</summary>
    public static void SkipIfRequested(string variable, string what)
    {
        if (string.Equals(Environment.GetEnvironmentVariable(variable), "1", StringComparison.Ordinal))
        {
            Assert.Skip($"{variable}=1: {what} deliberately skipped");
        }
    }

    public static void Demand(bool satisfied, string what, string skipVariable)
    {
        if (!satisfied)
        {
            Assert.Fail($"{what}. Install it (the README test command does), or set {skipVariable}=1 to skip deliberately.");
        }
    }
}
