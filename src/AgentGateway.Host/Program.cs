using AgentGateway.Host;

return await GatewayCommand.RunAsync(args, Console.Out, Console.Error);
