namespace SharedLvm.Os.Lvm;

public enum LvmErrorKind
{
    Failed,
    NotFound,
    AlreadyExists,
    InsufficientSpace,
    MetadataFull,
    InvalidArgument,
    /// <summary>The operation needs device-mapper (snapshots, activation) and this host has none.</summary>
    NeedsDeviceMapper,
}

/// <summary>An lvm command exited non-zero. LC_ALL=C is always set, so the patterns below hold.</summary>
public class LvmException : Exception
{
    public LvmException()
    {
    }

    public LvmException(string message)
        : base(message)
    {
    }

    public LvmException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public LvmException(string command, int exitCode, string standardError)
        : base($"lvm {command} failed with exit code {exitCode}: {Summarize(standardError)}")
    {
        Command = command;
        ExitCode = exitCode;
        StandardError = standardError;
        Kind = Classify(exitCode, standardError);
    }

    public string Command { get; } = string.Empty;

    public int ExitCode { get; }

    public string StandardError { get; } = string.Empty;

    public LvmErrorKind Kind { get; }

    /// <summary>The stderr lines that matter (lvm's WARNING lines about disabled activation do not).</summary>
    public static string Summarize(string standardError) =>
        string.Join(" ", standardError.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("WARNING: Activation disabled", StringComparison.Ordinal)
                        && !l.StartsWith("File descriptor", StringComparison.Ordinal)));

    internal static LvmErrorKind Classify(int exitCode, string standardError)
    {
        bool Has(string text) => standardError.Contains(text, StringComparison.OrdinalIgnoreCase);
        if (Has("exceeds maximum metadata size") || Has("metadata too large") || Has("no space for metadata"))
        {
            return LvmErrorKind.MetadataFull;
        }

        if (Has("insufficient free space") || Has("insufficient suitable"))
        {
            return LvmErrorKind.InsufficientSpace;
        }

        if (Has("already exists"))
        {
            return LvmErrorKind.AlreadyExists;
        }

        if (Has("without using device-mapper kernel driver") || Has("device-mapper: driver") || Has("no device-mapper"))
        {
            return LvmErrorKind.NeedsDeviceMapper;
        }

        // topolvm: "not found" is exit code 5 plus a pattern.
        if (exitCode == 5 && (Has("not found") || Has("Failed to find")))
        {
            return LvmErrorKind.NotFound;
        }

        if (exitCode == 3 || Has("Invalid argument"))
        {
            return LvmErrorKind.InvalidArgument;
        }

        return LvmErrorKind.Failed;
    }
}
