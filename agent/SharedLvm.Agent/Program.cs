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
