using System.Text.RegularExpressions;
using SharedLvm.Agent.Uplink;
using SharedLvm.Contracts.V1;

namespace SharedLvm.Agent.Activation;

/// <summary>
/// What every command from the controller must be before the agent acts on it: addressed to this
/// node (a stale address or a reused IP misroutes it), from a controller epoch not older than the
/// highest this node has seen (a deposed controller's late order) nor the same epoch from
/// another controller, naming a valid VG and LV.
/// </summary>
public sealed partial class CommandGuard(AgentOptions options, EpochStore epochs)
{
    [GeneratedRegex("^[a-zA-Z0-9+_.][a-zA-Z0-9+_.-]{0,127}\\z", RegexOptions.CultureInvariant)]
    private static partial Regex LvmName();

    /// <summary>Checks a volume command; the VG and LV it names.</summary>
    public (string Vg, string Lv) Check(CommandHeader? header, LvRef? lv)
    {
        Check(header);
        if (lv is null || !LvmName().IsMatch(lv.VgName) || !LvmName().IsMatch(lv.LvName))
        {
            throw new AgentException(AgentErrorKind.InvalidArgument, $"'{lv?.VgName}/{lv?.LvName}' is not a VG/LV name.");
        }

        return (lv.VgName, lv.LvName);
    }

    /// <summary>Checks a command that names no volume: addressed to this node, from a current controller.</summary>
    public void Check(CommandHeader? header)
    {
        CheckAddressedToMe(header);
        if (header?.Epoch is not { Value: > 0 } epoch)
        {
            throw new AgentException(AgentErrorKind.InvalidArgument, "The command carries no controller epoch.");
        }

        if (!epochs.Observe(epoch.Value, epoch.ControllerId))
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, epoch.Value == epochs.Highest
                ? $"Refused: controller {epoch.ControllerId} claims epoch {epoch.Value}, which controller {epochs.Holder} holds on this node (two controllers with one epoch?)."
                : $"Refused: controller epoch {epoch.Value} is older than {epochs.Highest}, the highest this node has seen (a deposed controller?).");
        }
    }

    /// <summary>A command for another node was misrouted (stale address, reused IP): refuse it.</summary>
    private void CheckAddressedToMe(CommandHeader? header)
    {
        if (header is { NodeName.Length: > 0 } && !string.Equals(header.NodeName, options.NodeName, StringComparison.Ordinal))
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition, $"This is node {options.NodeName}; the command was addressed to {header.NodeName}.");
        }
    }
}
