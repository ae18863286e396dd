namespace SharedLvm.Contracts.Conventions;

/// <summary>
/// How a standby controller points callers to the active one: UNAVAILABLE with the active
/// controller's host:port in this trailer. The controller sets it, slvm and the agents follow it.
/// </summary>
public static class ActiveController
{
    public const string Trailer = "sharedlvm-active-controller";
}
