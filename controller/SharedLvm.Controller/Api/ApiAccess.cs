using SharedLvm.Contracts.V1;
using SharedLvm.Hosting.Security;
using static SharedLvm.Grpc.Security.PeerRoles;
using ControllerRpc = SharedLvm.Contracts.V1.Controller;

namespace SharedLvm.Controller.Api;

/// <summary>
/// Who may call what on the controller. Readers look; operators do what a cloud's volume driver
/// does every minute; admins do what can lose data or move ownership (delete, pools, fencing,
/// drain). Nodes only register and heartbeat, each as itself: a node-a certificate reporting for
/// node-b would let one compromised node claim another's volumes.
/// </summary>
public static class ApiAccess
{
    public static readonly string[] ReaderMethods =
        ["GetPool", "ListPools", "GetVolume", "ListVolumes", "GetNode", "ListNodes", "GetNodeHealth", "WatchEvents", "GetControllerStatus"];

    public static readonly string[] OperatorMethods =
        ["CreateVolume", "ExtendVolume", "CreateSnapshot", "RestoreSnapshot", "CloneVolume", "SetVolumeLabels", "AttachVolume", "DetachVolume", "RescanNode"];

    public static readonly string[] AdminMethods =
        ["CreatePool", "UpdatePool", "ForgetPool", "DeleteVolume", "FenceNode", "DrainNode", "ResumeNode", "RestartNodeMultipathd"];

    public static AccessPolicy Policy()
    {
        var policy = new AccessPolicy().OpenHealth().AllowReflection(Reader, Operator, Admin);
        foreach (var method in ReaderMethods)
        {
            policy.Allow(MethodPaths.Of(ControllerRpc.Descriptor, method), mutates: false, Reader, Operator, Admin);
        }

        foreach (var method in OperatorMethods)
        {
            policy.Allow(MethodPaths.Of(ControllerRpc.Descriptor, method), mutates: true, Operator, Admin);
        }

        foreach (var method in AdminMethods)
        {
            policy.Allow(MethodPaths.Of(ControllerRpc.Descriptor, method), mutates: true, Admin);
        }

        policy.AllowNodeAsItself(MethodPaths.Of(NodeRegistry.Descriptor, "RegisterNode"), r => ((RegisterNodeRequest)r).NodeName);
        policy.AllowNodeAsItself(MethodPaths.Of(NodeRegistry.Descriptor, "Heartbeat"), r => ((HeartbeatRequest)r).NodeName);
        return policy;
    }
}
