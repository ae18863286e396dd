using System.CommandLine;
using static SharedLvm.Cli.Connection;

namespace SharedLvm.Cli.Commands;

/// <summary>
/// The command tree: one noun per file. Exit codes: 0 success; 1-16 the gRPC status code of a failed
/// call (5 NOT_FOUND, 6 ALREADY_EXISTS, 9 FAILED_PRECONDITION, 14 UNAVAILABLE...); 64 bad usage.
/// </summary>
internal static class SlvmCommands
{
    public static RootCommand Build(TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("slvm: manage SharedLvm pools and volumes through the controller API.");
        foreach (var option in GlobalOptions)
        {
            root.Options.Add(option);
        }

        root.Subcommands.Add(PoolCommands.Build(stdout, stderr));
        root.Subcommands.Add(VolumeCommands.Build(stdout, stderr));
        root.Subcommands.Add(NodeCommands.Build(stdout, stderr));
        root.Subcommands.Add(EventCommands.Build(stdout, stderr));
        root.Subcommands.Add(ControllerCommands.Build(stdout, stderr));
        return root;
    }
}
