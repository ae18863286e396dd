using System.Diagnostics;

namespace SharedLvm.Agent.Telemetry;

/// <summary>The agent's spans: activate, deactivate, refresh and rescan, children of the controller's.</summary>
public static class AgentActivities
{
    public static readonly ActivitySource Source = new("SharedLvm.Agent");
}
