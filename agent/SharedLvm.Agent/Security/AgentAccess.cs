using SharedLvm.Grpc.Security;

namespace SharedLvm.Agent.Security;

/// <summary>
/// The agent obeys the controller alone: an API client's certificate, even an admin's, can't
/// activate an LV here (it would bypass the controller's ownership record). Health stays open.
/// </summary>
public static class AgentAccess
{
    public static readonly string[] Commands = ["ActivateVolume", "DeactivateVolume", "RefreshVolume", "Rescan"];

    public static readonly string[] Queries = ["GetInventory", "GetHealth"];

    public static AccessPolicy Policy()
    {
        var policy = new AccessPolicy().OpenHealth();
        foreach (var method in Commands)
        {
            policy.Allow(MethodPaths.Of(AgentApi.Descriptor, method), mutates: true, PeerRoles.Controller);
        }

        foreach (var method in Queries)
        {
            policy.Allow(MethodPaths.Of(AgentApi.Descriptor, method), mutates: false, PeerRoles.Controller);
        }

        return policy;
    }
}
