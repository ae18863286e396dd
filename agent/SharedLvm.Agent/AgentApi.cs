using SharedLvm.Contracts.V1;

namespace SharedLvm.Agent;

/// <summary>
/// sharedlvm.v1.Agent. Methods are added here as the agent learns them (discovery, activation);
/// until then the transport answers UNIMPLEMENTED for them.
/// </summary>
public sealed class AgentApi
{
    public static Google.Protobuf.Reflection.ServiceDescriptor Descriptor =>
        AgentReflection.Descriptor.FindTypeByName<Google.Protobuf.Reflection.ServiceDescriptor>("Agent");
}
