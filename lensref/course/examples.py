"""Prompts the lesson, the exercises and the tests share, so a claim and its check read the same text.

Each was chosen by running the real default model (SmolLM2-135M-Instruct); tests/test_book.py re-runs them
and fails if the model no longer shows what the pages say.
"""

EIFFEL = "The Eiffel Tower is located in the city of"
EIFFEL_TARGET = " Paris"
EIFFEL_DISTRACTOR = " London"


# Facts the model gets right (final top-1 == target): the "crystallizes at the end" population.
FACTS = {
    "The Eiffel Tower is located in the city of": " Paris",
    "The capital of France is": " Paris",
    "The capital of Germany is": " Berlin",
    "The capital of Italy is": " Rome",
    "The capital of Spain is": " Madrid",
    "The capital of Canada is": " Ottawa",
    "The Colosseum is located in the city of": " Rome",
    "The Great Wall is located in the country of": " China",
    "The first man to walk on the moon was Neil": " Armstrong",
    "The theory of relativity was developed by Albert": " Einstein",
    "The Mona Lisa was painted by Leonardo da": " Vinci",
    "The currency of the United Kingdom is the": " pound",
    "The largest ocean on Earth is the": " Pacific",
    "The tallest mountain in the world is Mount": " Everest",
}

# Category before answer: colour words rise as a group in the middle layers, before one colour wins.
COLOUR_PROMPT = "She painted the wall a bright shade of"
COLOUR_ANSWER = " blue"
CATEGORIES = {
    "colours": " red blue green yellow black white orange purple pink brown grey violet golden silver",
    "animals": " dog cat horse cow sheep lion tiger bear wolf fox rabbit mouse eagle snake whale shark duck",
    "cities": " Paris London Rome Berlin Madrid Tokyo Vienna Moscow Amsterdam Prague Athens Lisbon Dublin",
    "numbers": " one two three four five six seven eight nine ten eleven twelve twenty hundred",
}

# Predicted, then corrected: a token holds top-1 for many layers and is overturned at the end.
CORRECTED = {"prompt": "One, two, three, four,", "early": " and", "final": " five"}
# A plausible wrong city at the penultimate layer, corrected at the last one.
CORRECTED_CITY = {"prompt": "The capital of Brazil is", "early": " Rio", "final": " Bras"}

# Wrong and staying wrong: the right answer never reaches the top 10 at any layer.
STAYS_WRONG = {"prompt": "Big Ben is located in the city of", "right": " London", "final": " New"}
# Wrong at the end, but the right answer was close (rank 2): information present, outcompeted.
NEAR_MISS = {"prompt": "The capital of Australia is", "right": " Canberra", "final": " Sydney"}
