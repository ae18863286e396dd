using SharedLvm.Agent;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(AgentHost.Usage);
    return 0;
}

try
{
    await AgentHost.Build(args).RunAsync();
    return 0;
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync("sharedlvm-agent: " + e.Message + " (see --help)");
    return 64;
}
catch (SharedLvm.Grpc.Security.TlsConfigurationException e)
{
    // EX_CONFIG: systemd shows it, and Restart= won't help until the files are fixed.
    await Console.Error.WriteLineAsync("sharedlvm-agent: " + e.Message);
    return 78;
}
