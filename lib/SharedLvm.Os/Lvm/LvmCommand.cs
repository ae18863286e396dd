using System.Globalization;
using SharedLvm.Os.Processes;

namespace SharedLvm.Os.Lvm;

/// <summary>
/// The only code that knows the lvm binary exists (topolvm's internal/lvmd/command). Every call
/// passes the full <see cref="LvmConfig"/>, LC_ALL=C (through the runner) and a timeout; names reach
/// lvm as argv entries, never through a shell. Internal: callers get it only wrapped in a role
/// (<see cref="LvmReader"/>, <see cref="LvmActivation"/>, and the controller's metadata writer), so
/// which verbs a process can run is decided by the types it can reach.
/// </summary>
internal sealed class LvmCommand
{
    private static readonly IReadOnlyDictionary<string, string> Environment = new Dictionary<string, string>
    {
        // lvm complains about every inherited descriptor of a daemon; the warnings drown real errors.
        ["LVM_SUPPRESS_FD_WARNINGS"] = "1",
    };

    private readonly IProcessRunner _runner;
    private readonly string _binary;

    public LvmCommand(IProcessRunner runner, LvmConfig config, TimeSpan timeout, string binary)
    {
        _runner = runner;
        Config = config;
        Timeout = timeout;
        _binary = binary;
    }

    public LvmConfig Config { get; }

    public TimeSpan Timeout { get; }

    /// <summary>Runs `lvm COMMAND --config CONFIG ARGS`; a non-zero exit is an <see cref="LvmException"/>.</summary>
    public async Task<string> RunAsync(string command, IReadOnlyList<string> arguments, CancellationToken cancellationToken, string? standardInput = null)
    {
        var result = await RunRawAsync([command, "--config", Config.Render(), .. arguments], cancellationToken, standardInput).ConfigureAwait(false);
        return result.Succeeded ? result.StandardOutput : throw new LvmException(command, result.ExitCode, result.StandardError);
    }

    /// <summary>Runs lvm with exactly these arguments (lvmconfig takes no --config of ours).</summary>
    public Task<ProcessResult> RunRawAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken, string? standardInput = null) =>
        _runner.RunAsync(new ProcessSpec(_binary, arguments) { Timeout = Timeout, Environment = Environment, StandardInput = standardInput }, cancellationToken);

    public static IEnumerable<string> TagArguments(string flag, IEnumerable<string> tags) =>
        tags.SelectMany(t => new[] { flag, t });

    /// <summary>Sizes are always given in bytes ("b" suffix) so no unit or rounding is implied.</summary>
    public static string Bytes(ulong value) => value.ToString(CultureInfo.InvariantCulture) + "b";
}
