namespace SharedLvm.Tests.Support;

/// <summary>
/// A wrapper around the real lvm binary that can stall one subcommand before or after it runs, to
/// make timeouts ("killed before commit", "killed after commit") and concurrency deterministic
/// while the metadata work stays real; and fail another one, as lvm refusing it would (exit 5,
/// nothing run).
/// </summary>
internal sealed class SlowLvm : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("slvm-slow-lvm-").FullName;

    public SlowLvm()
    {
        System.IO.File.WriteAllText(Path, $$"""
            #!/bin/sh
            # control file: "<subcommand> <before|after> <seconds>"
            set -- "$@"
            rule=$(cat {{ControlFile}} 2>/dev/null)
            sub=${rule%% *}; rest=${rule#* }; when=${rest%% *}; secs=${rest#* }
            if [ "$1" = "$sub" ]; then touch {{StalledFile}}; fi
            if [ "$1" = "$sub" ] && [ "$when" = before ]; then sleep "$secs"; fi
            if [ "$1" = "$(cat {{FailFile}} 2>/dev/null)" ]; then echo "  $1 failed (injected by the test)" >&2; exit 5; fi
            lvm "$@"; rc=$?
            if [ "$1" = "$sub" ] && [ "$when" = after ]; then sleep "$secs"; fi
            exit $rc
            """.Replace("\r", string.Empty, StringComparison.Ordinal));
        System.IO.File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Path => System.IO.Path.Combine(_directory, "lvm");

    /// <summary>True once a stalled subcommand has started.</summary>
    public bool Stalled => System.IO.File.Exists(StalledFile);

    private string ControlFile => System.IO.Path.Combine(_directory, "rule");

    private string StalledFile => System.IO.Path.Combine(_directory, "stalled");

    private string FailFile => System.IO.Path.Combine(_directory, "fail");

    public void Stall(string subcommand, string when, double seconds)
    {
        System.IO.File.Delete(StalledFile);
        System.IO.File.WriteAllText(ControlFile, $"{subcommand} {when} {seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
    }

    /// <summary>Every later <paramref name="subcommand"/> exits 5 without running lvm, until <see cref="Clear"/>.</summary>
    public void Fail(string subcommand) => System.IO.File.WriteAllText(FailFile, subcommand);

    public void Clear()
    {
        System.IO.File.Delete(ControlFile);
        System.IO.File.Delete(FailFile);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
