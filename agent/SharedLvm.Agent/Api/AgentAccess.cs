using SharedLvm.Grpc.Security;
using SharedLvm.Hosting.Security;
using AgentRpc = SharedLvm.Contracts.V1.Agent;

namespace SharedLvm.Agent.Api;

/// <summary>
/// The agent obeys the controller alone: an API client's certificate, even an admin's, can't
/// activate an LV here (it would bypass the controller's ownership record). Health stays open;
/// reflection is for the controller too (operators look at agents through the controller).
/// </summary>
public static class AgentAccess
{
    public static readonly string[] Commands = ["ActivateVolume", "DeactivateVolume", "RefreshVolume", "Rescan", "RestartMultipathd", "WipeVolume", "CopyVolume", "PreemptReservation"];

    public static readonly string[] Queries = ["GetInventory", "GetHealth"];

    public static AccessPolicy Policy()
    {
        var policy = new AccessPolicy().OpenHealth().AllowReflection(PeerRoles.Controller);
        foreach (var method in Commands)
        {
            policy.Allow(MethodPaths.Of(AgentRpc.Descriptor, method), mutates: true, PeerRoles.Controller);
        }

        foreach (var method in Queries)
        {
            policy.Allow(MethodPaths.Of(AgentRpc.Descriptor, method), mutates: false, PeerRoles.Controller);
        }

        return policy;
    }
}
