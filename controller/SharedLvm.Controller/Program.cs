using SharedLvm.Controller;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(ControllerHost.Usage);
    return 0;
}

try
{
    var app = ControllerHost.Build(args);
    await app.RunAsync();
    return 0;
}
catch (ArgumentException e)
{
    await Console.Error.WriteLineAsync("sharedlvm-controller: " + e.Message + " (see --help)");
    return 64;
}
catch (SharedLvm.Grpc.Security.TlsConfigurationException e)
{
    // EX_CONFIG: systemd shows it, and Restart= won't help until the files are fixed.
    await Console.Error.WriteLineAsync("sharedlvm-controller: " + e.Message);
    return 78;
}
