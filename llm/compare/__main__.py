from llm.compare.experiment import main

main()
