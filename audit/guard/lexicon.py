"""A small hand-written list of offensive English word forms, used for one thing only: finding
word boundaries inside spaced-out text that normalization joined into one run
("y o u a r e a n i d i o t" -> "youareanidiot" -> "youarean idiot"), so the scorer sees the
word. It is not a scorer and decides nothing by itself. Written for this project; extend it
with a policy's ``terms``.
"""

from __future__ import annotations

OFFENSIVE_WORDS: tuple[str, ...] = tuple(
    ["asshole", "assholes", "bastard", "bastards", "bitch", "bitches", "bitchy", "bollocks", "bullshit", "crap", "crappy", "cunt", "cunts", "damn", "damned", "dick", "dickhead", "dicks", "dipshit", "douche", "douchebag", "dumb", "dumbass", "dumber", "dumbest", "fag", "faggot", "fuck", "fucked", "fucker", "fuckers", "fuckface", "fuckin", "fucking", "fucks", "goddamn", "hell", "homo", "idiot", "idiotic", "idiots", "imbecile", "jackass", "jerk", "jerks", "kill", "killed", "killing", "kys", "loser", "losers", "moron", "moronic", "morons", "motherfucker", "motherfucking", "nazi", "pathetic", "piss", "pissed", "prick", "pricks", "pussy", "rape", "rapist", "retard", "retarded", "scum", "scumbag", "shit", "shithead", "shits", "shitty", "slut", "sluts", "stupid", "stupidest", "suck", "sucks", "trash", "twat", "ugly", "whore", "whores", "wanker", "worthless", "hate", "hateful", "die", "disgusting", "filthy", "freak", "garbage", "pig", "pigs", "psycho", "rat", "clown", "crybaby", "slob", "dork", "nitwit", "halfwit", "cretin", "dimwit", "lame", "useless", "ignorant", "brainless"]
)
